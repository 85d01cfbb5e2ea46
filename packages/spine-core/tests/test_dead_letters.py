"""The runner dead-letters executions whose retries are used up; a retry from there is linked."""

from __future__ import annotations

import logging
import time

import pytest

from spine_core.backend import InlineBackend
from spine_core.capabilities import capabilities_up_to
from spine_core.dead_letters import RETRIES_EXHAUSTED, DeadLetterClosed, retry_dead_letter
from spine_core.dispatcher import Dispatcher
from spine_core.events import EventType
from spine_core.execution import NewExecution
from spine_core.log_context import LogContextFilter
from spine_core.memory import InMemoryLedgerStore
from spine_core.registry import Registry
from spine_core.retry import RetryPolicy
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus as S
from spine_core.workflow import Step, Workflow

ADVANCED = capabilities_up_to("market-spine-advanced")
POLICY = RetryPolicy(max_attempts=2, initial_interval=0.05)


@pytest.fixture
def store():
    return InMemoryLedgerStore()


@pytest.fixture
def fixed():
    """Flip to True to make `always.fails` succeed (the cause was fixed)."""
    return {"fixed": False}


@pytest.fixture
def registry(fixed):
    def flaky(ctx):
        logging.getLogger("user.step").warning("trying")
        if not fixed["fixed"]:
            raise ConnectionError("upstream down")
        return "ok"

    def bad(ctx):
        raise ValueError("bad input")

    registry = Registry()
    registry.add(
        Workflow("always.fails", (Step.lambda_("call", flaky, retry=POLICY),)),
        Workflow("fails.once", (Step.lambda_("call", bad),)),
    )
    return registry


def _drive(store, runner, execution_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = store.get_execution(execution_id)
        if row.status in (S.COMPLETED, S.FAILED, S.DEAD_LETTERED):
            return row
        claimed = store.claim_next("w")
        if claimed is None:
            time.sleep(0.005)
            continue
        runner.advance(claimed.id, claimed=claimed)
    raise AssertionError(store.get_execution(execution_id))


def _runner(store, registry, **kwargs):
    return ExecutionRunner(store, registry, ADVANCED, "t", dead_letters=store, **kwargs)


def _start(store, name):
    return store.create_execution(NewExecution(name=name, status=S.QUEUED)).id


def test_retries_used_up_land_in_the_dead_letters_with_every_attempt_in_the_events(store, registry):
    execution_id = _start(store, "always.fails")
    row = _drive(store, _runner(store, registry), execution_id)
    assert row.status is S.DEAD_LETTERED
    [letter] = store.list_dead_letters()
    assert letter.execution_id == execution_id and letter.reason == RETRIES_EXHAUSTED
    assert letter.attempts == 2 and "upstream down" in letter.error
    events = store.list_events(execution_id)
    status_events = [
        (e.event_type, e.payload["attempt"]) for e in events if "step" not in e.payload
    ]
    assert status_events == [
        (EventType.CREATED, 1),
        (EventType.QUEUED, 1),
        (EventType.STARTED, 1),
        (EventType.STARTED, 2),
        (EventType.FAILED, 2),
        (EventType.DEAD_LETTERED, 2),
    ]
    retry_queued = [e for e in events if e.payload.get("reason") == "retry"]
    assert [e.payload["attempt"] for e in retry_queued] == [2]


def test_a_failure_that_is_not_retried_stays_failed_unless_configured(store, registry):
    plain = _drive(store, _runner(store, registry), _start(store, "fails.once"))
    assert plain.status is S.FAILED and store.count_dead_letters() == 0
    runner = _runner(store, registry, dead_letter_all_failures=True)
    dead = _drive(store, runner, _start(store, "fails.once"))
    assert dead.status is S.DEAD_LETTERED
    assert store.list_dead_letters()[0].reason == "failed (USER_CODE), not retried"


def test_without_a_dead_letter_store_retries_used_up_stay_failed(store, registry):
    runner = ExecutionRunner(store, registry, ADVANCED, "t")
    assert _drive(store, runner, _start(store, "always.fails")).status is S.FAILED


def test_a_retry_from_the_dead_letters_is_a_linked_execution_and_happens_once(
    store, registry, fixed
):
    runner = _runner(store, registry)
    dead_id = _start(store, "always.fails")
    _drive(store, runner, dead_id)
    [letter] = store.list_dead_letters()
    fixed["fixed"] = True
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, ADVANCED, "t")
    retry = retry_dead_letter(dispatcher, store, letter.id)
    assert retry.parent_execution_id == dead_id and retry.status is S.COMPLETED
    assert store.get_dead_letter(letter.id).retried_as == retry.id
    with pytest.raises(DeadLetterClosed, match=retry.id):
        retry_dead_letter(dispatcher, store, letter.id)
    assert store.count_by_status() == {"dead_lettered": 1, "completed": 1}


def test_log_records_of_a_step_carry_execution_step_attempt_and_worker(store, registry, caplog):
    caplog.handler.addFilter(LogContextFilter())
    execution_id = _start(store, "always.fails")
    with caplog.at_level(logging.WARNING, logger="user.step"):
        _drive(store, _runner(store, registry), execution_id)
    tried = [r for r in caplog.records if r.getMessage() == "trying"]
    assert [(r.execution_id, r.step, r.attempt, r.worker) for r in tried] == [
        (execution_id, "call", 1, "w"),
        (execution_id, "call", 2, "w"),
    ]
