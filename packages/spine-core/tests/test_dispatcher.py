"""The dispatcher: persist first, then run; cancel, retry, wait, capabilities."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import BaseModel, ConfigDict

from spine_core.backend import BackendHealth, InlineBackend
from spine_core.capabilities import Capability, capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import (
    ErrorCategory,
    ExecutionNotFound,
    IllegalTransition,
    InvalidParams,
    MissingCapability,
    SpineError,
    UnknownPipeline,
)
from spine_core.events import EventType
from spine_core.execution import Execution, ExecutionFilter, Lane, TriggerSource
from spine_core.registry import PipelineContext, pipeline
from spine_core.results import StepResult
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus
from spine_core.workflow import Step, Workflow

BASIC = capabilities_up_to("market-spine-basic")
ADVANCED = capabilities_up_to("market-spine-advanced")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 1
    fail: bool = False


@pipeline("job", params=Params)
def job(params: Params, ctx: PipelineContext) -> StepResult:
    if params.fail:
        return StepResult.fail("asked to fail", ErrorCategory.INFRASTRUCTURE)
    return StepResult.ok(params.n)


class SpyBackend:
    """Records what the ledger looked like when work was handed over, then runs inline."""

    name = "spy"
    creates_as = ExecutionStatus.PENDING

    def __init__(self, runner: ExecutionRunner, run: bool = True) -> None:
        self.inline = InlineBackend(runner)
        self.run = run
        self.seen: list[tuple[str, ExecutionStatus]] = []
        self.cancelled: list[str] = []

    def submit(self, execution_id: str) -> Execution | None:
        self.seen.append(
            (execution_id, self.inline.runner.store.get_execution(execution_id).status)
        )
        return self.inline.submit(execution_id) if self.run else None

    def cancel(self, execution_id: str) -> None:
        self.cancelled.append(execution_id)

    def health(self) -> BackendHealth:
        return BackendHealth(True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def make_dispatcher(store, registry):
    registry.add(job)

    def make(capabilities=BASIC, run=True):
        runner = ExecutionRunner(store, registry, capabilities, "test-tier")
        backend = SpyBackend(runner, run=run)
        return Dispatcher(store, backend, registry, capabilities, "test-tier")

    return make


def test_submit_persists_then_runs(make_dispatcher, store):
    dispatcher = make_dispatcher()
    execution = dispatcher.submit("job", {"n": 5}, trigger_source=TriggerSource.CLI)
    assert dispatcher.backend.seen == [(execution.id, ExecutionStatus.PENDING)]
    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.params == {"n": 5, "fail": False}
    assert execution.trigger_source is TriggerSource.CLI and execution.backend == "spy"
    assert execution.result["outputs"] == {"job": 5}
    assert [e.event_type for e in dispatcher.events(execution.id)] == [
        EventType.CREATED,
        EventType.STARTED,
        EventType.STAGE_COMPLETED,
        EventType.COMPLETED,
    ]
    assert dispatcher.get(execution.id) == execution
    assert dispatcher.list() == [execution]


def test_failed_run_is_recorded(make_dispatcher):
    execution = make_dispatcher().submit("job", {"fail": True})
    assert execution.status is ExecutionStatus.FAILED
    assert "asked to fail" in execution.error
    assert execution.error_category == "INFRASTRUCTURE"


@pytest.mark.parametrize(
    ("name", "params", "error"),
    [
        ("nope", {}, UnknownPipeline),
        ("job", {"n": "many"}, InvalidParams),
        ("job", {"typo": 1}, InvalidParams),
    ],
)
def test_bad_submissions_create_no_row(make_dispatcher, store, name, params, error):
    dispatcher = make_dispatcher()
    with pytest.raises(error):
        dispatcher.submit(name, params)
    assert store.list_executions(ExecutionFilter()) == []
    assert dispatcher.backend.seen == []


def test_missing_step_capability_creates_no_row(make_dispatcher, store, registry):
    registry.add(Workflow("mapped", (Step.map("m", [1], Step.lambda_("x", lambda c: 1)),)))
    with pytest.raises(MissingCapability, match=r"Step\.map needs market-spine-advanced"):
        make_dispatcher().submit("mapped")
    assert store.list_executions(ExecutionFilter()) == []


def test_logical_key_needs_concurrency_keys(make_dispatcher, store):
    with pytest.raises(MissingCapability) as info:
        make_dispatcher().submit("job", logical_key="otc:2024-03-05")
    assert "market-spine-advanced" in str(info.value)
    assert info.value.distribution == "market-spine-advanced"
    assert store.list_executions(ExecutionFilter()) == []
    execution = make_dispatcher(ADVANCED).submit("job", logical_key="otc:2024-03-05")
    assert execution.logical_key == "otc:2024-03-05"


def test_cancel_pending(make_dispatcher):
    dispatcher = make_dispatcher(run=False)
    execution = dispatcher.submit("job")
    assert execution.status is ExecutionStatus.PENDING
    cancelled = dispatcher.cancel(execution.id)
    assert cancelled.status is ExecutionStatus.CANCELLED
    assert dispatcher.events(execution.id)[-1].event_type is EventType.CANCELLED


def test_cancel_queued(make_dispatcher, store):
    dispatcher = make_dispatcher(run=False)
    execution = dispatcher.submit("job")
    store.transition(execution.id, ExecutionStatus.QUEUED)
    assert dispatcher.cancel(execution.id).status is ExecutionStatus.CANCELLED


def test_cancel_running_needs_the_cancel_capability(make_dispatcher, store):
    dispatcher = make_dispatcher(run=False)
    execution = dispatcher.submit("job")
    store.transition(execution.id, ExecutionStatus.RUNNING)
    with pytest.raises(MissingCapability, match="market-spine-advanced"):
        dispatcher.cancel(execution.id)
    assert store.get_execution(execution.id).status is ExecutionStatus.RUNNING
    assert dispatcher.backend.cancelled == []


def test_cancel_running_with_the_capability_asks_the_backend(make_dispatcher, store):
    dispatcher = make_dispatcher(ADVANCED, run=False)
    execution = dispatcher.submit("job")
    store.transition(execution.id, ExecutionStatus.RUNNING)
    assert dispatcher.cancel(execution.id).status is ExecutionStatus.CANCELLING
    assert dispatcher.backend.cancelled == [execution.id]
    assert dispatcher.events(execution.id)[-1].event_type is EventType.CANCEL_REQUESTED


def test_cancel_finished_is_illegal(make_dispatcher):
    dispatcher = make_dispatcher()
    execution = dispatcher.submit("job")
    with pytest.raises(IllegalTransition):
        dispatcher.cancel(execution.id)


def test_cancel_between_steps_ends_cancelled(store, registry):
    holder = {}

    def request_cancel(ctx):
        holder["dispatcher"].cancel(ctx.run_id)
        return "asked"

    registry.add(
        Workflow("two", (Step.lambda_("a", request_cancel), Step.lambda_("b", lambda c: 1)))
    )
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t")
    holder["dispatcher"] = dispatcher
    execution = dispatcher.submit("two")
    assert execution.status is ExecutionStatus.CANCELLED
    assert execution.error_category == "CANCELLED"
    assert execution.result["outputs"] == {"a": "asked"}
    assert [e.event_type for e in dispatcher.events(execution.id)][-3:] == [
        EventType.CANCEL_REQUESTED,
        EventType.STAGE_COMPLETED,
        EventType.CANCELLED,
    ]


def test_runner_leaves_an_execution_cancelled_before_it_started_alone(store, registry):
    registry.add(job)
    runner = ExecutionRunner(store, registry, BASIC, "t")
    dispatcher = Dispatcher(store, SpyBackend(runner, run=False), registry, BASIC, "t")
    execution = dispatcher.submit("job")
    dispatcher.cancel(execution.id)
    assert runner.advance(execution.id).status is ExecutionStatus.CANCELLED
    assert len(dispatcher.events(execution.id)) == 2


def test_retry_links_to_the_parent(make_dispatcher):
    dispatcher = make_dispatcher()
    first = dispatcher.submit("job", {"fail": True}, lane=Lane.BACKFILL)
    second = dispatcher.retry(first.id)
    assert second.id != first.id
    assert second.parent_execution_id == first.id
    assert second.retry_count == 1
    assert second.trigger_source is TriggerSource.RETRY
    assert second.lane is Lane.BACKFILL and second.params == first.params
    third = dispatcher.retry(second.id)
    assert (third.parent_execution_id, third.retry_count) == (second.id, 2)
    children = dispatcher.list(ExecutionFilter(parent_execution_id=first.id))
    assert [c.id for c in children] == [second.id]


def test_retry_of_cancelled_is_allowed(make_dispatcher):
    dispatcher = make_dispatcher(run=False)
    execution = dispatcher.submit("job")
    dispatcher.cancel(execution.id)
    assert dispatcher.retry(execution.id).parent_execution_id == execution.id


def test_retry_refuses_a_completed_execution(make_dispatcher):
    dispatcher = make_dispatcher()
    done = dispatcher.submit("job")
    with pytest.raises(SpineError, match="is completed"):
        dispatcher.retry(done.id)
    assert len(dispatcher.list()) == 1


def test_wait_returns_when_terminal_or_on_timeout(make_dispatcher, store):
    dispatcher = make_dispatcher(run=False)
    execution = dispatcher.submit("job")
    t0 = time.monotonic()
    assert dispatcher.wait(execution.id, timeout=0.1, poll=0.01).status is ExecutionStatus.PENDING
    assert time.monotonic() - t0 >= 0.1

    def finish_later():
        time.sleep(0.05)
        dispatcher.backend.inline.submit(execution.id)

    thread = threading.Thread(target=finish_later)
    thread.start()
    done = dispatcher.wait(execution.id, timeout=10, poll=0.01)
    thread.join()
    assert done.status is ExecutionStatus.COMPLETED


def test_unknown_execution_ids(make_dispatcher):
    dispatcher = make_dispatcher()
    for call in (dispatcher.get, dispatcher.events, dispatcher.cancel, dispatcher.retry):
        with pytest.raises(ExecutionNotFound):
            call("0-missing")


def test_capability_table_names_distributions():
    assert Capability.CANCEL in ADVANCED and Capability.CANCEL not in BASIC
    assert capabilities_up_to("market-spine-full") == frozenset(Capability)


def test_cancelling_twice_returns_the_row(make_dispatcher, store):
    dispatcher = make_dispatcher(ADVANCED, run=False)
    execution = dispatcher.submit("job")
    store.transition(execution.id, ExecutionStatus.RUNNING)
    dispatcher.cancel(execution.id)
    again = dispatcher.cancel(execution.id)
    assert again.status is ExecutionStatus.CANCELLING
    assert dispatcher.backend.cancelled == [execution.id]


def test_a_backend_that_refuses_work_leaves_no_pending_row(store, registry):
    class BrokenBackend(SpyBackend):
        def submit(self, execution_id: str) -> None:
            raise ConnectionError("broker unreachable")

    registry.add(job)
    runner = ExecutionRunner(store, registry, BASIC, "t")
    dispatcher = Dispatcher(store, BrokenBackend(runner), registry, BASIC, "t")
    with pytest.raises(ConnectionError):
        dispatcher.submit("job")
    [execution] = store.list_executions(ExecutionFilter())
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error_category == "INFRASTRUCTURE"
    assert "broker unreachable" in execution.error


def test_a_failed_step_with_an_unstorable_output_still_ends_failed(store, registry):
    from decimal import Decimal

    registry.add(
        Workflow(
            "decimal_failure",
            (Step.lambda_("x", lambda c: StepResult.fail("bad", output={"v": Decimal("1.5")})),),
        )
    )
    runner = ExecutionRunner(store, registry, BASIC, "t")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, BASIC, "t")
    execution = dispatcher.submit("decimal_failure")
    assert execution.status is ExecutionStatus.FAILED
    assert "not stored" in execution.result["steps"][0]["output"]


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_empty_or_overlong_logical_key_creates_no_row(make_dispatcher, store, key):
    with pytest.raises(InvalidParams, match="logical_key: must be 1 to 200 characters"):
        make_dispatcher(ADVANCED).submit("job", logical_key=key)
    assert store.list_executions(ExecutionFilter()) == []


def test_wait_returns_on_the_announcement_not_on_a_poll(make_dispatcher, store):
    dispatcher = make_dispatcher(run=False)
    dispatcher.notifications = store.notifications
    execution = dispatcher.submit("job")

    def finish() -> None:
        store.transition(execution.id, ExecutionStatus.RUNNING)
        store.transition(execution.id, ExecutionStatus.COMPLETED)

    threading.Timer(0.1, finish).start()
    started = time.monotonic()
    # a poll this slow would take 30 s; the announcement ends the wait
    done = dispatcher.wait(execution.id, timeout=10, poll=30)
    assert done.status is ExecutionStatus.COMPLETED
    assert time.monotonic() - started < 0.9
