"""`Step.map` fan-out on the advanced tier against a Celery chord of the same no-op tasks.

Product: a workflow whose one map step runs `items` no-op child executions (every item its own
execution in the ledger, `max_concurrency` = all of them) on the advanced tier's LocalBackend,
submit to completed. Baseline: `chord(noop.si(i) for i in items)(gather.s())` on a prefork Celery
worker with as many processes as the backend has threads (`bench.celery_baseline`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import noop
from bench.celery_baseline import celery_worker
from bench.common import Config, postgres_database
from bench.harness import Outcome, repeat
from spine_core.workflow import Step, Workflow


def _workflow(items: int) -> Workflow:
    body = Step.pipeline("noop", noop.NAME)
    return Workflow("bench.map", (Step.map("each", list(range(items)), body, items),))


def _advanced_runtime(url: str, workers: int) -> Any:
    from spine_advanced.runtime import build_runtime
    from spine_advanced.tier import TIER
    from spine_core.tier import Settings

    return build_runtime(TIER, Settings(url, {"workers": str(workers)}))


async def _migrate_advanced(url: str) -> None:
    import asyncpg

    from spine_advanced.pg.migrations import migrate_all

    conn = await asyncpg.connect(dsn=url, timeout=5)
    try:
        await migrate_all(conn)
    finally:
        await conn.close()


def map_seconds(items: int, workers: int) -> float:
    """Seconds from submitting a map of `items` no-op children to its completion."""
    with postgres_database(migrated=False) as url:
        asyncio.run(_migrate_advanced(url))
        runtime = _advanced_runtime(url, workers)
        runtime.registry.add(noop.noop, _workflow(items))
        try:
            runtime.backend.start()
            start = time.perf_counter()
            done = runtime.dispatcher.wait(runtime.dispatcher.submit("bench.map").id, timeout=300)
            elapsed = time.perf_counter() - start
            if done.status.value != "completed" or len(done.result["outputs"]["each"]) != items:
                raise RuntimeError(f"bench.map ended {done.status.value}: {done.error}")
            return elapsed
        finally:
            runtime.close()


def bench_map_vs_chord(cfg: Config) -> Outcome:
    """A 1,000-item map and gather against a 1,000-task Celery chord (target: 3x faster)."""
    items = 100 if cfg.quick else 1000
    with celery_worker(concurrency=cfg.workers) as celery:
        prod, base = repeat(
            cfg.runs,
            lambda: map_seconds(items, cfg.workers),
            lambda: celery.chord_seconds(items),
            "s",
        )
    notes = {
        "items": items,
        "worker_threads": cfg.workers,
        "celery_concurrency": cfg.workers,
        "target_seconds": 1.0,
        "map_seconds_median": prod.median,
    }
    return Outcome(
        "map_1000_vs_chord", prod, base, higher_is_better=False, target=1 / 3, notes=notes
    )
