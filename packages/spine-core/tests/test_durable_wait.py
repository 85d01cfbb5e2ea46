"""Step.wait under the runner: the execution leaves its worker and is due again later."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from spine_core.capabilities import capabilities_up_to
from spine_core.errors import WorkflowDefinitionError
from spine_core.events import EventType
from spine_core.execution import NewExecution, utcnow
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus as S
from spine_core.workflow import Step, Workflow

ADVANCED = capabilities_up_to("market-spine-advanced")


def _advance_when_due(store, runner, execution_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claimed = store.claim_next("w")
        if claimed is not None:
            return runner.advance(claimed.id, claimed=claimed)
        time.sleep(0.005)
    raise AssertionError(store.get_execution(execution_id))


@pytest.mark.parametrize("last", [False, True])
def test_a_wait_queues_the_execution_until_it_is_due(store, registry, last):
    before: list[float] = []
    after: list[float] = []
    steps = [Step.lambda_("before", lambda ctx: before.append(time.monotonic()) or 1)]
    steps.append(Step.wait("pause", 0.3))
    if not last:
        steps.append(Step.lambda_("after", lambda ctx: after.append(time.monotonic()) or 2))
    registry.add(Workflow("waits", tuple(steps)))
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="waits", status=S.QUEUED))
    t0 = time.monotonic()
    parked = runner.advance(execution.id, claimed=store.claim_next("w"))
    assert time.monotonic() - t0 < 0.2, "no thread sleeps through a wait"
    assert parked.status is S.QUEUED and parked.due_at is not None
    assert store.claim_next("w") is None
    done = _advance_when_due(store, runner, execution.id)
    assert done.status is S.COMPLETED, done.error
    assert time.monotonic() - t0 >= 0.3
    assert len(before) == 1 and len(after) == (0 if last else 1)
    queued = [e for e in store.list_events(execution.id) if e.event_type is EventType.QUEUED]
    assert queued[-1].payload["reason"] == "wait"


def test_a_wait_until_a_past_moment_goes_straight_on_and_says_so(store, registry):
    registry.add(
        Workflow(
            "late",
            (
                Step.wait("pause", until=utcnow() - timedelta(minutes=1)),
                Step.lambda_("after", lambda ctx: 2),
            ),
        )
    )
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="late", status=S.QUEUED))
    done = runner.advance(execution.id, claimed=store.claim_next("w"))
    assert done.status is S.COMPLETED
    pause = next(e for e in store.list_events(execution.id) if e.payload.get("step") == "pause")
    assert pause.payload["until_in_past"] is True


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Step.wait("w", -1), "a wait cannot be negative"),
        (lambda: Step.wait("w", timedelta(seconds=-5)), "a wait cannot be negative"),
        (lambda: Step.wait("w", until=utcnow().replace(tzinfo=None)), "timezone-aware"),
    ],
)
def test_bad_waits_are_refused_when_the_step_is_built(make, message):
    with pytest.raises(WorkflowDefinitionError, match=message):
        make()
