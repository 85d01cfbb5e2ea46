"""The durable engine: what a checkpoint per step costs through a LocalBackend worker.

Product: one 10-step no-op workflow (a checkpoint after every step), submitted and awaited.
Baseline: the same 10 no-op steps as 10 one-step executions in a row, each submitted and
awaited, so the ratio is what checkpointing inside one execution costs against paying a whole
execution per step. The `*_vs_celery` benchmarks put the same product beside raw Celery on Redis
(`bench.celery_baseline`): a 10-task chain, and 1,000 single no-op tasks.
"""

from __future__ import annotations

import time

from bench import noop
from bench.celery_baseline import celery_worker
from bench.common import Config, postgres_database
from bench.harness import Outcome, repeat
from bench.postgres_suite import _db, _runtime
from spine_core.workflow import Step, Workflow

STEPS = 10
WORKFLOW = Workflow(
    "bench.ten_steps", tuple(Step.pipeline(f"s{i}", noop.NAME) for i in range(STEPS))
)


def bench_workflow_steps(cfg: Config) -> Outcome:
    """ms per step, submit to completed, one worker thread; ledger durations in the notes."""
    rounds = 5 if cfg.quick else 50
    ledger_ms: list[float] = []

    prod, base = repeat(
        cfg.runs,
        lambda: _ms_per_step(rounds, submit_all=True, ledger_ms=ledger_ms),
        lambda: _ms_per_step(rounds, submit_all=False),
        "ms/step",
    )
    notes = {
        "steps": STEPS,
        "workflows_per_run": rounds,
        "worker_threads": 1,
        "ledger_started_to_finished_ms_per_step_median": sorted(ledger_ms)[len(ledger_ms) // 2],
        "wait_poll_seconds": 0.001,
    }
    return Outcome(
        "workflow_10_steps_postgres", prod, base, higher_is_better=False, target=1.0, notes=notes
    )


def _ms_per_step(rounds: int, *, submit_all: bool, ledger_ms: list[float] | None = None) -> float:
    """Submit-to-completed ms per step, one worker thread: 10-step workflows, or as many
    one-step executions; with `ledger_ms`, the ledger's started-to-finished ms per step too."""
    with postgres_database() as url:
        runtime = _runtime(url, 1)
        runtime.registry.add(noop.noop, WORKFLOW)
        try:
            runtime.backend.start()
            runtime.dispatcher.wait(runtime.dispatcher.submit(noop.NAME).id, poll=0.001)
            start = time.perf_counter()
            for _ in range(rounds):
                names = [WORKFLOW.name] if submit_all else [noop.NAME] * STEPS
                for name in names:
                    done = runtime.dispatcher.wait(
                        runtime.dispatcher.submit(name).id, timeout=30, poll=0.001
                    )
                    if done.status.value != "completed":
                        raise RuntimeError(f"{name} ended {done.status.value}: {done.error}")
            elapsed = time.perf_counter() - start
            if submit_all and ledger_ms is not None:
                rows = _db(runtime).call(
                    _db(runtime).pool.fetch(
                        "SELECT EXTRACT(EPOCH FROM finished_at - started_at) AS s "
                        "FROM executions WHERE name = $1",
                        WORKFLOW.name,
                    )
                )
                ledger_ms.extend(float(r["s"]) * 1000 / STEPS for r in rows)
        finally:
            runtime.close()
    return elapsed * 1000 / (rounds * STEPS)


def _single_step_runs_per_second(n: int, workers: int) -> float:
    """`n` one-step executions submitted at once, `workers` threads: completed per second."""
    with postgres_database() as url:
        runtime = _runtime(url, workers)
        runtime.registry.add(noop.noop)
        try:
            runtime.backend.start()
            start = time.perf_counter()
            ids = [runtime.dispatcher.submit(noop.NAME).id for _ in range(n)]
            for execution_id in ids:
                done = runtime.dispatcher.wait(execution_id, timeout=120, poll=0.005)
                if done.status.value != "completed":
                    raise RuntimeError(f"{execution_id} ended {done.status.value}: {done.error}")
            return n / (time.perf_counter() - start)
        finally:
            runtime.close()


def bench_workflow_steps_vs_celery(cfg: Config) -> Outcome:
    """ms per step of a 10-step workflow against a 10-task Celery chain (target: 2.5x faster)."""
    rounds = 5 if cfg.quick else 50
    with celery_worker(concurrency=1) as celery:

        def chains() -> float:
            return sorted(celery.chain_ms_per_step(STEPS) for _ in range(rounds))[rounds // 2]

        prod, base = repeat(
            cfg.runs, lambda: _ms_per_step(rounds, submit_all=True), chains, "ms/step"
        )
    notes = {"steps": STEPS, "rounds": rounds, "worker_threads": 1, "celery_concurrency": 1}
    return Outcome(
        "workflow_10_steps_vs_celery", prod, base, higher_is_better=False, target=0.4, notes=notes
    )


def bench_single_step_runs_vs_celery(cfg: Config) -> Outcome:
    """1,000 one-step executions at once on 4 threads against 1,000 Celery tasks (1.7x)."""
    n = 100 if cfg.quick else 1000
    with celery_worker(concurrency=cfg.workers) as celery:
        prod, base = repeat(
            cfg.runs,
            lambda: _single_step_runs_per_second(n, cfg.workers),
            lambda: celery.single_runs_per_second(n),
            "runs/s",
        )
    notes = {"executions": n, "worker_threads": cfg.workers, "celery_concurrency": cfg.workers}
    return Outcome(
        "single_step_runs_vs_celery", prod, base, higher_is_better=True, target=1.7, notes=notes
    )
