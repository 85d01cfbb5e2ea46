"""The durable runner: a step at a time, a checkpoint per step, resume, lost workers."""

from __future__ import annotations

import pytest

from spine_core.backend import InlineBackend
from spine_core.capabilities import capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import MissingCapability, SpineError
from spine_core.events import EventType
from spine_core.execution import NewExecution
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus as S
from spine_core.workflow import Step, Workflow

ADVANCED = capabilities_up_to("market-spine-advanced")
BASIC = capabilities_up_to("market-spine-basic")


class WorkerDied(BaseException):
    """Stands for SIGKILL inside a step: nothing after it in this process runs."""


def counted_workflow(
    calls: dict[str, int], *, die_in: str | None = None, fail_in: str | None = None
):
    def step(name: str) -> Step:
        def body(ctx):
            calls[name] = calls.get(name, 0) + 1
            if name == die_in and calls[name] == 1:
                raise WorkerDied
            if name == fail_in and calls[name] == 1:
                raise ConnectionError("database went away")
            return {"step": name, "seen": sorted(ctx.outputs)}

        return Step.lambda_(name, body)

    return Workflow("four", tuple(step(n) for n in ("a", "b", "c", "d")))


def test_a_new_worker_continues_after_the_last_checkpoint(store, registry):
    calls: dict[str, int] = {}
    registry.add(counted_workflow(calls, die_in="c"))
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="four", status=S.QUEUED))
    first = store.claim_next("w1")
    with pytest.raises(WorkerDied):
        runner.advance(execution.id, claimed=first)
    store.transition(execution.id, S.QUEUED, payload={"reason": "lease expired"})
    done = runner.advance(execution.id, claimed=store.claim_next("w2"))
    assert done.status is S.COMPLETED, done.error
    assert calls == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert done.result["outputs"]["d"] == {"step": "d", "seen": ["a", "b", "c"]}
    stages = [e.payload["step"] for e in store.list_events(execution.id) if e.payload.get("step")]
    assert stages == ["a", "b", "c", "d"]


def test_the_old_worker_cannot_write_after_losing_its_lease(store, registry):
    registry.add(
        Workflow("one", (Step.lambda_("a", lambda ctx: 1), Step.lambda_("b", lambda c: 2)))
    )
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    execution = store.create_execution(NewExecution(name="one", status=S.QUEUED))
    stale = store.claim_next("w1")
    store.transition(execution.id, S.QUEUED)
    store.claim_next("w2")
    row = runner.advance(execution.id, claimed=stale)
    assert row.status is S.RUNNING and row.worker_id == "w2"
    assert store.load_run_state(execution.id) is None


def test_resume_continues_a_failed_run_from_the_failed_step(store, registry):
    calls: dict[str, int] = {}
    registry.add(counted_workflow(calls, fail_in="b"))
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t")
    failed = dispatcher.submit("four")
    assert failed.status is S.FAILED and "database went away" in failed.error
    done = dispatcher.resume(failed.id)
    assert done.id == failed.id and done.status is S.COMPLETED
    assert done.error is None and done.error_category is None
    assert calls == {"a": 1, "b": 2, "c": 1, "d": 1}
    events = dispatcher.events(done.id)
    resumed = [e for e in events if e.event_type is EventType.QUEUED]
    assert resumed[-1].payload["reason"] == "resumed"
    b_attempts = [e.payload["attempt"] for e in events if e.payload.get("step") == "b"]
    assert b_attempts == [1, 2]


@pytest.mark.parametrize("make_status", ["completed", "running", "unknown"])
def test_resume_refuses_anything_but_a_failed_run(store, registry, make_status):
    registry.add(Workflow("one", (Step.lambda_("a", lambda ctx: 1),)))
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t")
    if make_status == "completed":
        execution_id = dispatcher.submit("one").id
    elif make_status == "running":
        execution_id = store.create_execution(NewExecution(name="one", status=S.QUEUED)).id
        store.claim_next("w")
    else:
        execution_id = "nope"
    before = store.count_by_status(), store.table_counts()
    with pytest.raises(SpineError):
        dispatcher.resume(execution_id)
    assert (store.count_by_status(), store.table_counts()) == before


def test_resume_needs_the_checkpoints_capability(store, registry):
    registry.add(Workflow("one", (Step.lambda_("a", lambda ctx: 1),)))
    runner = ExecutionRunner(store, registry, BASIC, "basic")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, BASIC, "basic")
    with pytest.raises(
        MissingCapability,
        match="install it with: pip install --find-links dist market-spine-advanced",
    ):
        dispatcher.resume(dispatcher.submit("one").id)


def test_an_observer_that_raises_does_not_fail_the_run(store, registry, caplog):
    class Broken:
        def __getattr__(self, name):
            def boom(*args):
                raise RuntimeError("observer down")

            return boom

    registry.add(Workflow("one", (Step.lambda_("a", lambda ctx: 1),)))
    runner = ExecutionRunner(store, registry, ADVANCED, "t", observers=lambda e: [Broken()])
    done = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t").submit("one")
    assert done.status is S.COMPLETED
    assert "observer down" in caplog.text
