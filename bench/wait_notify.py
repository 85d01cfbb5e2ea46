"""`python -m bench.wait_notify`: a 10-step workflow through a worker, end to end.

Submit, then `Dispatcher.wait`, on one worker thread: the intermediate tier's wait polls the
ledger every 50 ms; the advanced tier's is told by LISTEN/NOTIFY. Printed beside each, the
ledger's own created -> finished time for the same executions: the gap is time spent waiting.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from bench.common import postgres_database

RUNS = 30


def _ten_steps() -> Any:
    from spine_core.workflow import Step, Workflow

    return Workflow(
        "bench.ten_steps", tuple(Step.lambda_(f"s{i}", lambda ctx: None) for i in range(10))
    )


def _measure(runtime: Any, runs: int) -> tuple[float, float]:
    runtime.registry.add(_ten_steps())
    runtime.backend.start()
    try:
        end_to_end, ledger = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            execution = runtime.dispatcher.submit("bench.ten_steps")
            done = runtime.dispatcher.wait(execution.id, timeout=30)
            end_to_end.append((time.perf_counter() - t0) * 1000)
            if done.status.value != "completed":
                raise RuntimeError(f"ended {done.status.value}: {done.error}")
            ledger.append((done.finished_at - done.created_at).total_seconds() * 1000)
        return statistics.median(end_to_end), statistics.median(ledger)
    finally:
        runtime.backend.stop(5)
        runtime.close()


def main(runs: int = RUNS) -> None:
    import asyncpg

    from spine_advanced.pg.migrations import migrate_all
    from spine_advanced.runtime import build_runtime as advanced_runtime
    from spine_advanced.tier import TIER as ADVANCED
    from spine_core.tier import Settings
    from spine_intermediate.pg.loop import AsyncBridge
    from spine_intermediate.runtime import build_runtime as intermediate_runtime
    from spine_intermediate.tier import TIER as INTERMEDIATE

    with postgres_database(migrated=False) as url:
        bridge = AsyncBridge("bench-migrate")

        async def migrate() -> None:
            conn = await asyncpg.connect(dsn=url, timeout=5)
            try:
                await migrate_all(conn)
            finally:
                await conn.close()

        bridge.call(migrate())
        bridge.close()
        settings = Settings(url, {"workers": "1"})
        for label, runtime in (
            ("intermediate (polls every 50 ms)", intermediate_runtime(INTERMEDIATE, settings)),
            ("advanced (LISTEN/NOTIFY)", advanced_runtime(ADVANCED, settings)),
        ):
            end_to_end, ledger = _measure(runtime, runs)
            print(
                f"{label:<34} end to end {end_to_end:6.1f} ms   "
                f"ledger created->finished {ledger:5.1f} ms   (median of {runs})"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
