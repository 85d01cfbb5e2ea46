"""RetryPolicy: validation, backoff, and retries through the durable due time."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spine_core.backend import InlineBackend
from spine_core.capabilities import capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import ErrorCategory, MissingCapability, WorkflowDefinitionError
from spine_core.events import STAGE_EVENTS
from spine_core.execution import NewExecution
from spine_core.registry import PipelineContext, pipeline
from spine_core.results import StepResult
from spine_core.retry import RetryPolicy
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus as S
from spine_core.workflow import Step, Workflow

ADVANCED = capabilities_up_to("market-spine-advanced")
INTERMEDIATE = capabilities_up_to("market-spine-intermediate")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"initial_interval": -0.1}, "initial_interval must not be negative"),
        ({"max_interval": -1}, "max_interval must not be negative"),
        ({"backoff": 0.5}, "backoff must be at least 1"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1"),
    ],
)
def test_bad_policies_are_refused_at_construction(kwargs, message):
    with pytest.raises(WorkflowDefinitionError, match=message):
        RetryPolicy(**kwargs)


@given(
    initial=st.floats(0, 10),
    backoff=st.floats(1, 4),
    cap=st.floats(0, 60),
    jitter=st.floats(0, 1),
    attempt=st.integers(1, 20),
)
def test_delays_grow_stay_capped_and_jitter_only_shortens(initial, backoff, cap, jitter, attempt):
    plain = RetryPolicy(10, initial, backoff, cap)
    assert plain.delay(attempt) <= plain.delay(attempt + 1) or plain.delay(attempt) == cap
    assert 0 <= plain.delay(attempt) <= cap
    jittered = RetryPolicy(10, initial, backoff, cap, jitter).delay(attempt)
    assert plain.delay(attempt) * (1 - jitter) - 1e-9 <= jittered <= plain.delay(attempt) + 1e-9


def test_default_categories_are_not_retried():
    policy = RetryPolicy(max_attempts=5)
    for category in (ErrorCategory.DATA_QUALITY, ErrorCategory.VALIDATION, ErrorCategory.CANCELLED):
        assert not policy.retries(1, category)
    assert policy.retries(4, ErrorCategory.USER_CODE) and not policy.retries(
        5, ErrorCategory.USER_CODE
    )


def _flaky(failures: int, calls: list[float]):
    def body(ctx):
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise ConnectionError(f"attempt {len(calls)}: connection refused")
        return {"attempts": len(calls)}

    return body


def _drive(store, runner, execution_id, timeout=5.0):
    """Claim whenever the ledger lets us, as a worker's idle loop does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = store.get_execution(execution_id)
        if row.status in (S.COMPLETED, S.FAILED):
            return row
        claimed = store.claim_next("w")
        if claimed is None:
            time.sleep(0.005)
            continue
        runner.advance(claimed.id, claimed=claimed)
    raise AssertionError(store.get_execution(execution_id))


def test_a_step_failing_twice_completes_on_attempt_three_after_its_backoff(store, registry):
    calls: list[float] = []
    policy = RetryPolicy(max_attempts=3, initial_interval=0.1, backoff=2)
    registry.add(
        Workflow(
            "flaky",
            (
                Step.lambda_("first", lambda ctx: "once"),
                Step.lambda_("call", _flaky(2, calls), retry=policy),
            ),
        )
    )
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="flaky", status=S.QUEUED))
    first = runner.advance(execution.id, claimed=store.claim_next("w"))
    assert first.status is S.QUEUED and first.due_at is not None
    assert store.claim_next("w") is None  # not due yet: nothing to claim, no thread sleeps
    done = _drive(store, runner, execution.id)
    assert done.status is S.COMPLETED and done.result["outputs"]["call"] == {"attempts": 3}
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps
    events = store.list_events(execution.id)
    attempts = [
        e.payload["attempt"]
        for e in events
        if e.event_type in STAGE_EVENTS and e.payload["step"] == "call"
    ]
    assert attempts == [1, 2, 3]
    retries = [e.payload for e in events if e.payload.get("reason") == "retry"]
    assert [r["next_attempt"] for r in retries] == [2, 3]
    assert [r["delay_seconds"] for r in retries] == [0.1, 0.2]
    assert sum(1 for e in events if e.payload.get("step") == "first") == 1


def test_attempts_used_up_fail_the_execution(store, registry):
    calls: list[float] = []
    registry.add(
        Workflow("flaky", (Step.lambda_("call", _flaky(9, calls), retry=RetryPolicy(2, 0.01)),))
    )
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="flaky", status=S.QUEUED))
    done = _drive(store, runner, execution.id)
    assert done.status is S.FAILED and "attempt 2: connection refused" in done.error
    assert len(calls) == 2


def test_a_data_quality_failure_is_not_retried(store, registry):
    @pipeline("bad.data", retry=RetryPolicy(5, 0.01))
    def bad(params, ctx: PipelineContext) -> StepResult:
        return StepResult.fail("reject rate 9%", ErrorCategory.DATA_QUALITY)

    registry.add(bad)
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    done = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t").submit("bad.data")
    assert done.status is S.FAILED and done.error_category == "DATA_QUALITY"


def test_a_pipeline_registered_with_a_policy_is_retried(store, registry):
    calls: list[float] = []

    @pipeline("net.call", retry=RetryPolicy(3, 0.01))
    def net(params, ctx: PipelineContext) -> StepResult:
        return StepResult.ok(_flaky(1, calls)(None))

    registry.add(net)
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="net.call", status=S.QUEUED))
    done = _drive(store, runner, execution.id)
    assert done.status is S.COMPLETED and len(calls) == 2


def test_a_tier_without_retry_policies_refuses_them_before_anything_runs(store, registry):
    registry.add(Workflow("flaky", (Step.lambda_("call", lambda c: 1, retry=RetryPolicy()),)))
    runner = ExecutionRunner(store, registry, INTERMEDIATE, "intermediate")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, INTERMEDIATE, "intermediate")
    with pytest.raises(MissingCapability, match="RetryPolicy needs market-spine-advanced"):
        dispatcher.submit("flaky")
    assert store.count_by_status() == {}
