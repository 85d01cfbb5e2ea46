"""Run history written by the HistoryObserver into the in-memory store."""

from __future__ import annotations

import time

from spine_core.backend import InlineBackend
from spine_core.capabilities import capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import ErrorCategory
from spine_core.history import FLUSH_SECONDS, HistoryObserver
from spine_core.memory import InMemoryLedgerStore
from spine_core.quality import Gate, QualityMetrics
from spine_core.results import StepResult
from spine_core.runner import ExecutionRunner
from spine_core.workflow import Step, Workflow

INTERMEDIATE = capabilities_up_to("market-spine-intermediate")


def flow(fail: bool = False) -> Workflow:
    return Workflow(
        "flow",
        (
            Step.lambda_("a", lambda ctx: {"rows": 3}),
            Step.lambda_(
                "b",
                lambda ctx: StepResult.ok(
                    1, quality=QualityMetrics(10, 9 if fail else 10, 1 if fail else 0)
                ),
                gates=[Gate.min("valid_rate", 0.95)],
            ),
            Step.lambda_("c", lambda ctx: "done"),
        ),
        version=4,
    )


def run(store, registry, workflow):
    registry.add(workflow)
    runner = ExecutionRunner(
        store,
        registry,
        INTERMEDIATE,
        "t",
        observers=lambda execution: [HistoryObserver(store, execution.id)],
    )
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, INTERMEDIATE, "t")
    return dispatcher.submit(workflow.name)


def test_one_run_row_and_one_row_per_step(store, registry):
    execution = run(store, registry, flow())
    runs = store.list_runs()
    assert len(runs) == 1
    rows = store.get_run(runs[0].run_id)
    head, steps = rows[0], rows[1:]
    assert head.step is None and head.status == "completed" and head.error is None
    assert head.execution_id == execution.id and head.run_id == execution.id
    assert (head.workflow, head.version) == ("flow", 4)
    assert head.finished_at is not None and head.duration_ms is not None
    assert [s.step for s in steps] == ["a", "b", "c"]
    assert all(s.status == "ok" and s.kind == "lambda" for s in steps)
    assert all(s.duration_ms is not None and s.finished_at >= s.started_at for s in steps)
    assert steps[0].detail["output"] == {"rows": 3}
    assert steps[1].detail["quality"]["record_count"] == 10
    assert steps[1].detail["gates"][0]["passed"] is True


def test_failed_run_records_the_failing_step(store, registry):
    run(store, registry, flow(fail=True))
    (head,) = store.list_runs(workflow="flow")
    rows = store.get_run(head.run_id)
    assert rows[0].status == "failed" and "min valid_rate" in rows[0].error
    assert [r.step for r in rows[1:]] == ["a", "b"]
    failed = rows[2]
    assert failed.status == "failed" and failed.category == ErrorCategory.DATA_QUALITY.value
    assert failed.detail["gates"][0]["observed"] == 0.9
    assert failed.detail["output"] is None


def test_a_cancelled_run_is_recorded_as_cancelled(store, registry):
    advanced = capabilities_up_to("market-spine-advanced")
    holder = {}

    def cancel_me(ctx):
        holder["dispatcher"].cancel(ctx.run_id)
        return "asked"

    registry.add(Workflow("stopped", (Step.lambda_("a", cancel_me), Step.lambda_("b", len))))
    runner = ExecutionRunner(
        store, registry, advanced, "t", observers=lambda e: [HistoryObserver(store, e.id)]
    )
    holder["dispatcher"] = Dispatcher(store, InlineBackend(runner), registry, advanced, "t")
    execution = holder["dispatcher"].submit("stopped")
    assert execution.status.value == "cancelled"
    (head,) = store.list_runs(workflow="stopped")
    assert head.status == "cancelled"


def test_a_step_that_reports_cancelled_unasked_ends_failed_not_stuck(store, registry):
    workflow = Workflow(
        "gave_up",
        (Step.lambda_("a", lambda ctx: StepResult.fail("stop", ErrorCategory.CANCELLED)),),
    )
    execution = run(store, registry, workflow)
    assert execution.status.value == "failed"
    assert execution.error_category == "CANCELLED"


class CountingHistory(InMemoryLedgerStore):
    """Remembers each batch `record` was given, and what history held when it came."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def record(self, entries):
        self.batches.append([type(e).__name__ for e in entries])
        super().record(entries)


def test_a_one_step_run_writes_its_history_in_one_batch(registry):
    store = CountingHistory()
    run(store, registry, Workflow("one", (Step.lambda_("a", lambda ctx: 1),)))
    assert store.batches == [["RunStarted", "StepRunRecord", "RunFinished"]]


def test_a_running_workflow_shows_a_long_steps_predecessors_before_it_starts(registry):
    store = CountingHistory()
    seen = {}

    def slow(ctx):
        time.sleep(FLUSH_SECONDS * 1.2)
        return 1

    def look(ctx):
        seen["rows"] = [r.step for r in store.get_run(ctx.run_id)]
        return "looked"

    steps = (Step.lambda_("a", slow), Step.lambda_("b", look))
    run(store, registry, Workflow("two", steps))
    assert seen["rows"] == [None, "a"]
    assert store.batches == [["RunStarted", "StepRunRecord"], ["StepRunRecord", "RunFinished"]]


def test_quick_steps_write_their_history_once(registry):
    store = CountingHistory()
    steps = tuple(Step.lambda_(f"s{i}", lambda ctx: 1) for i in range(10))
    run(store, registry, Workflow("ten", steps))
    assert store.batches == [["RunStarted", *["StepRunRecord"] * 10, "RunFinished"]]


def test_a_run_that_leaves_its_worker_writes_what_it_buffered():
    from spine_core.capabilities import Capability
    from spine_core.execution import NewExecution
    from spine_core.registry import Registry
    from spine_core.runner import ExecutionRunner
    from spine_core.status import ExecutionStatus

    store = CountingHistory()
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("w", (Step.lambda_("a", lambda ctx: 1), Step.wait("pause", 60))))
    runner = ExecutionRunner(
        store,
        registry,
        frozenset(Capability),
        "t",
        observers=lambda execution: (HistoryObserver(store, execution.id),),
    )
    execution = store.create_execution(NewExecution(name="w", status=ExecutionStatus.QUEUED))
    row = runner.advance(execution.id, claimed=store.claim_next("w1"))
    assert row.status is ExecutionStatus.QUEUED
    assert store.batches == [["RunStarted", "StepRunRecord", "StepRunRecord"]]
