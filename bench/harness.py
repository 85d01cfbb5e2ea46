"""Repeat, take the median, compare with a baseline measured in the same run.

This machine is shared and noisy, so no absolute figure is trusted alone: every benchmark runs
its product and its baseline interleaved, on the same data, and reports the ratio of medians.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """Repeated measurements of one quantity."""

    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "samples": self.samples,
        }


@dataclass
class Outcome:
    """One benchmark's verdict."""

    name: str
    product: Figure
    baseline: Figure
    higher_is_better: bool
    target: float
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.product.median / self.baseline.median

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    def target_text(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "product": self.product.summary(),
            "baseline": self.baseline.summary(),
            "ratio": self.ratio,
            "target": self.target_text(),
            "met": self.met,
            "notes": self.notes,
        }


def repeat(
    runs: int, product: Callable[[], float], baseline: Callable[[], float], unit: str
) -> tuple[Figure, Figure]:
    """Interleave product and baseline runs so drift on the machine hits both alike."""
    prod, base = Figure(unit), Figure(unit)
    for _ in range(runs):
        base.samples.append(baseline())
        prod.samples.append(product())
    return prod, base


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
    }


def format_table(outcomes: list[Outcome]) -> str:
    """The table `python -m bench` prints."""
    header = ("benchmark", "product", "baseline", "ratio", "target", "met?")
    rows = [header]
    for o in outcomes:
        rows.append(
            (
                o.name,
                f"{o.product.median:,.4g} {o.product.unit}",
                f"{o.baseline.median:,.4g} {o.baseline.unit}",
                f"{o.ratio:.2f}",
                o.target_text(),
                "yes" if o.met else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(path: Path, outcomes: list[Outcome], extra: dict[str, Any]) -> None:
    """`bench/results/latest.json`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), **extra, "benchmarks": [o.to_dict() for o in outcomes]}
    path.write_text(json.dumps(data, indent=2, default=str))
