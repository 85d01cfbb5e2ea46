"""Where the time of `otc.daily` goes: each stage timed alone on one file, on both stores.

    python -m bench.stages [--rows N] [--store sqlite|postgres|both]

Python-only stages (read: the framing checks and content hash of `PsvReader`; hash: the
per-line record hash; check: the rules over every line) are timed on the lines in memory.
Store stages are the store's own calls, timed end to end: capture (read + hash + the raw
rows' write), normalize (read back + check + the trades' and rejects' write) and metrics.
`capture write` and `normalize write` are those minus their Python stages: the database's part.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import otc_file, postgres_database, scratch_dir, sqlite_file
from spine_otc.normalize import normalize_line
from spine_otc.parser import PsvReader
from spine_otc.store import CaptureInfo

Stage = tuple[str, float]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def python_stages(path: Path) -> dict[str, float]:
    """read, hash and check over the file's lines (Python only, no database)."""
    from spine_otc.bulk import decide_chunk
    from spine_otc.normalize import NormalizeTally
    from spine_otc.parser import record_hashes

    reader = PsvReader(path)
    read, blocks = _timed(lambda: list(reader.blocks()))
    hashing, _ = _timed(lambda: [list(record_hashes(b.lines)) for b in blocks])
    tally = NormalizeTally()

    def check() -> None:
        for b in blocks:
            decide_chunk(
                range(b.first_line, b.first_line + len(b.lines)), b.lines, normalize_line, tally
            )

    checking, _ = _timed(check)
    return {"read": read, "hash": hashing, "check": checking}


def store_stages(store: Any, path: Path) -> dict[str, float]:
    """capture, normalize and metrics through the store, as the pipelines call them."""
    from spine_otc.parser import file_sha256

    info = CaptureInfo.for_file(path, file_sha256(path))
    capture, batch = _timed(lambda: store.capture_batch(info, PsvReader(path)))
    normalize, outcome = _timed(
        lambda: store.normalize_batch(batch.batch_id, normalize_line, lambda q: True)
    )
    dates = outcome.batch.affected_dates
    metrics, _ = _timed(lambda: store.recompute_daily_metrics(dates, lambda q: True))
    return {"capture": capture, "normalize": normalize, "metrics": metrics}


def profile(store_name: str, path: Path) -> dict[str, float]:
    figures = python_stages(path)
    if store_name == "sqlite":
        from spine_basic.otc_store import SqliteOtcStore

        with scratch_dir() as d:
            store = SqliteOtcStore(sqlite_file(d))
            try:
                figures |= store_stages(store, path)
            finally:
                store.close()
    else:
        from spine_intermediate.pg.otc import PostgresOtcStore

        with postgres_database() as url:
            store = PostgresOtcStore.open(url)
            try:
                figures |= store_stages(store, path)
            finally:
                store.close()
    figures["capture write"] = figures["capture"] - figures["read"] - figures["hash"]
    figures["normalize write"] = figures["normalize"] - figures["check"]
    figures["total"] = figures["capture"] + figures["normalize"] + figures["metrics"]
    return figures


ORDER = (
    "read",
    "hash",
    "check",
    "capture",
    "capture write",
    "normalize",
    "normalize write",
    "metrics",
    "total",
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    path = otc_file(args.rows)
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    results = {name: profile(name, path) for name in stores}
    print(f"{args.rows:,} rows, seconds")
    print("| stage | " + " | ".join(stores) + " |")
    print("|---|" + "---|" * len(stores))
    for stage in ORDER:
        print(f"| {stage} | " + " | ".join(f"{results[s][stage]:.2f}" for s in stores) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
