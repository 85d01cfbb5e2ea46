"""The durable engine: what a checkpoint per step costs through a LocalBackend worker.

Product: one 10-step no-op workflow (a checkpoint after every step), submitted and awaited.
Baseline: the same 10 no-op steps as 10 one-step executions in a row, each submitted and
awaited, so the ratio is what checkpointing inside one execution costs against paying a whole
execution per step. The Celery baseline of the issue (a 10-task chain) is added separately.
"""

from __future__ import annotations

import time

from bench import noop
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

    def measure(submit_all: bool) -> float:
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
                if submit_all:
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

    prod, base = repeat(cfg.runs, lambda: measure(True), lambda: measure(False), "ms/step")
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
