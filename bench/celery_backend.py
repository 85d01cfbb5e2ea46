"""The Celery backend beside raw Celery: same Redis (database 13), same worker settings.

Both sides run a prefork worker with the same concurrency, late acks and prefetch 1. The
product is `spine worker start --backend celery` (every execution in the PostgreSQL ledger:
claim, checkpoint, events, run history); the baseline is `bench.celery_baseline`'s raw Celery
no-op tasks with Redis results. Measured: single-step executions per second against tasks per
second, submit-to-completed p50/p99 from the ledger, and a 10-step workflow's ms per step
against a 10-task Celery chain.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import noop
from bench.celery_baseline import REDIS_URL, celery_worker
from bench.common import Config, percentile, postgres_database
from bench.durable_suite import STEPS, WORKFLOW
from bench.harness import Outcome, repeat

PIPELINES = "bench.celery_backend:register"


def register(registry: Any) -> None:
    """The pipelines both the worker subprocess and the submitting runtime know."""
    registry.add(noop.noop, WORKFLOW)


@contextmanager
def spine_celery(concurrency: int) -> Iterator[Any]:
    """A fresh advanced database, a Celery-backend worker on its own queue, a client runtime."""
    from spine_advanced.celery.testing import CeleryWorker, options_of
    from spine_advanced.pg.migrations import migrate_all
    from spine_advanced.runtime import build_runtime
    from spine_advanced.tier import TIER
    from spine_core.tier import Settings

    with postgres_database(migrated=False) as url:
        asyncio.run(_migrate(url, migrate_all))
        root = Path(__file__).resolve().parent.parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
        env.update(
            SPINE_DATABASE_URL=url,
            SPINE_TIER="advanced",
            SPINE_BACKEND="celery",
            SPINE_BROKER_URL=REDIS_URL,
            SPINE_CELERY_QUEUE=f"bench-spine-{uuid.uuid4().hex[:8]}",
            SPINE_PIPELINE_MODULES=PIPELINES,
            PYTHONPATH=os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p),
        )
        runtime = build_runtime(TIER, Settings(url, options_of(env)))
        try:
            with CeleryWorker(env, concurrency=concurrency):
                runtime.dispatcher.wait(runtime.dispatcher.submit(noop.NAME).id, timeout=30)
                yield runtime
        finally:
            runtime.close()


async def _migrate(url: str, migrate_all: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn=url, timeout=5)
    try:
        await migrate_all(conn)
    finally:
        await conn.close()


def _completed(runtime: Any, ids: list[str]) -> int:
    db = runtime.extras["database"]
    return db.call(
        db.pool.fetchval(
            "SELECT count(*) FROM executions WHERE id = ANY($1::text[]) "
            "AND status IN ('completed', 'failed', 'cancelled')",
            ids,
        )
    )


def _runs_per_second(
    runtime: Any, n: int, latencies_ms: list[float], submit_ms: list[float]
) -> float:
    start = time.perf_counter()
    ids = [runtime.dispatcher.submit(noop.NAME).id for _ in range(n)]
    submit_ms.append((time.perf_counter() - start) * 1000 / n)
    deadline = time.monotonic() + 120
    while _completed(runtime, ids) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_completed(runtime, ids)} of {n} executions ended")
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    db = runtime.extras["database"]
    rows = db.call(
        db.pool.fetch(
            "SELECT status, EXTRACT(EPOCH FROM finished_at - created_at) * 1000 AS ms "
            "FROM executions WHERE id = ANY($1::text[])",
            ids,
        )
    )
    if any(r["status"] != "completed" for r in rows):
        raise RuntimeError("a no-op execution did not complete")
    latencies_ms.extend(float(r["ms"]) for r in rows)
    return n / elapsed


def _workflow_ms_per_step(runtime: Any, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        done = runtime.dispatcher.wait(runtime.dispatcher.submit(WORKFLOW.name).id, timeout=30)
        if done.status.value != "completed":
            raise RuntimeError(f"{WORKFLOW.name} ended {done.status.value}: {done.error}")
    return (time.perf_counter() - start) * 1000 / (rounds * STEPS)


def bench_single_step_runs_celery_backend(cfg: Config) -> Outcome:
    """Executions/s through the Celery backend against raw Celery tasks/s (target 0.7)."""
    n = 100 if cfg.quick else 1000
    latencies: list[float] = []
    submit_ms: list[float] = []
    with celery_worker(concurrency=cfg.workers, prefetch=1) as raw, spine_celery(cfg.workers) as rt:
        prod, base = repeat(
            cfg.runs,
            lambda: _runs_per_second(rt, n, latencies, submit_ms),
            lambda: raw.single_runs_per_second(n),
            "runs/s",
        )
    notes = {
        "executions": n,
        "celery_concurrency": cfg.workers,
        "prefetch_multiplier": 1,
        "submit_to_completed_ms_p50": percentile(latencies, 50),
        "submit_to_completed_ms_p99": percentile(latencies, 99),
        "submit_ms_per_execution_median": sorted(submit_ms)[len(submit_ms) // 2],
    }
    return Outcome(
        "single_step_runs_celery_backend",
        prod,
        base,
        higher_is_better=True,
        target=0.7,
        notes=notes,
    )


def bench_workflow_10_steps_celery_backend(cfg: Config) -> Outcome:
    """A 10-step workflow's ms per step on the Celery backend, against a 10-task chain."""
    rounds = 5 if cfg.quick else 50
    with celery_worker(concurrency=cfg.workers, prefetch=1) as raw, spine_celery(cfg.workers) as rt:

        def chains() -> float:
            return sorted(raw.chain_ms_per_step(STEPS) for _ in range(rounds))[rounds // 2]

        prod, base = repeat(cfg.runs, lambda: _workflow_ms_per_step(rt, rounds), chains, "ms/step")
    notes = {"steps": STEPS, "rounds": rounds, "celery_concurrency": cfg.workers}
    return Outcome(
        "workflow_10_steps_celery_backend",
        prod,
        base,
        higher_is_better=False,
        target=1.0,
        notes=notes,
    )
