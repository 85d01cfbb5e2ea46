"""Cancel on Celery: queued at once, running at its next step, a stuck one hard after grace."""

from __future__ import annotations

import time

import pytest

from spine_advanced.celery.testing import CeleryWorker, celery_env, options_of
from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.testing import step_calls

pytestmark = pytest.mark.postgres


def wait_status(rt, execution_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (row := rt.dispatcher.get(execution_id)).status is not status:
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    return row


def event_types(rt, execution_id):
    return [e.event_type.value for e in rt.dispatcher.events(execution_id)]


def test_a_queued_execution_is_cancelled_at_once_and_its_message_does_nothing(
    advanced_pg_url, redis_broker
):
    env = celery_env(advanced_pg_url, redis_broker)
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    try:
        queued = rt.dispatcher.submit("test.noop")  # no worker yet: its message waits
        assert rt.dispatcher.cancel(queued.id).status is ExecutionStatus.CANCELLED
        after = rt.dispatcher.submit("test.noop")
        with CeleryWorker(env, concurrency=1):
            wait_status(rt, after.id, ExecutionStatus.COMPLETED)
        assert rt.dispatcher.get(queued.id).status is ExecutionStatus.CANCELLED
        assert event_types(rt, queued.id) == ["created", "queued", "cancelled"]
    finally:
        rt.close()


def test_a_running_workflow_is_cancelled_at_its_next_step_boundary(
    advanced_pg_url, redis_broker, tmp_path
):
    env = celery_env(advanced_pg_url, redis_broker)
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    try:
        with CeleryWorker(env, concurrency=1):
            execution = rt.dispatcher.submit("test.counted", {"dir": str(tmp_path), "pause": 0.5})
            wait_status(rt, execution.id, ExecutionStatus.RUNNING)
            assert rt.dispatcher.cancel(execution.id).status is ExecutionStatus.CANCELLING
            done = wait_status(rt, execution.id, ExecutionStatus.CANCELLED, timeout=5)
        assert done.error_category == "CANCELLED"
        assert len(step_calls(tmp_path)) < 4
        events = event_types(rt, execution.id)
        assert events[-1] == "cancelled" and "cancel_requested" in events
    finally:
        rt.close()


def test_a_step_that_outlasts_the_grace_period_is_terminated_and_ends_cancelled(
    advanced_pg_url, redis_broker
):
    env = celery_env(advanced_pg_url, redis_broker, SPINE_CANCEL_GRACE_SECONDS="1")
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    try:
        with CeleryWorker(env, concurrency=1) as worker:
            stuck = rt.dispatcher.submit("test.sleep", {"seconds": 60})
            wait_status(rt, stuck.id, ExecutionStatus.RUNNING)
            rt.dispatcher.cancel(stuck.id)
            done = wait_status(rt, stuck.id, ExecutionStatus.CANCELLED, timeout=6)
            assert "terminated" in done.error
            # The one pool process was killed and replaced: the next run does not wait 60 s.
            nxt = rt.dispatcher.submit("test.noop")
            wait_status(rt, nxt.id, ExecutionStatus.COMPLETED, timeout=8)
            assert "hard-cancelled" in worker.output
        assert event_types(rt, stuck.id)[-2:] == ["cancel_requested", "cancelled"]
    finally:
        rt.close()
