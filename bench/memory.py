"""Peak RSS of `otc.daily` at two sizes, each in a fresh child process.

Run as `python -m bench.memory ROWS` it is the child: it runs `otc.daily` on a fresh SQLite
database through the basic tier's runtime and exits; the parent reads the child's own
`ru_maxrss` from `os.wait4`, so nothing of the parent's memory is counted.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import Config, otc_file, scratch_dir, sqlite_file
from bench.harness import Figure, Outcome


def child(rows: int) -> None:
    from spine_basic.tier import TIER
    from spine_core.tier import Settings

    path = otc_file(rows)
    with scratch_dir() as d:
        runtime = TIER.open_runtime(Settings(f"sqlite:///{sqlite_file(d)}"))
        try:
            execution = runtime.dispatcher.submit("otc.daily", {"file": str(path)})
        finally:
            runtime.close()
    if execution.status.value != "completed":
        raise SystemExit(f"otc.daily ended {execution.status.value}: {execution.error}")


def _child_maxrss_kib(rows: int) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "bench.memory", str(rows)])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"otc.daily child on {rows} rows exited {proc.returncode}")
    return usage.ru_maxrss  # KiB on Linux


def peak_rss_mib(rows: int) -> float:
    """Measured through a small launcher process.

    Linux carries the pre-exec image's high-water mark into a child's `ru_maxrss`, so a child
    forked straight from this (large) process would report this process's size. The launcher
    is a fresh interpreter: what its child inherits is the launcher's few MiB.
    """
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--launch", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.split()[-1]) / 1024


def bench_memory(cfg: Config) -> Outcome:
    small, large = cfg.memory_rows
    otc_file(small), otc_file(large)  # generate outside the children
    big, little = Figure("MiB"), Figure("MiB")
    for _ in range(cfg.runs):
        little.samples.append(peak_rss_mib(small))
        big.samples.append(peak_rss_mib(large))
    return Outcome(
        "memory_streaming",
        big,
        little,
        higher_is_better=False,
        target=1.3,
        notes={"product_is": f"otc.daily on {large:,} rows", "baseline_is": f"on {small:,} rows"},
    )


if __name__ == "__main__":
    if sys.argv[1] == "--launch":
        print(_child_maxrss_kib(int(sys.argv[2])))
    else:
        child(int(sys.argv[1]))
