"""The reaper's passes, one at a time, without a worker: what it re-sends and what it ends."""

from __future__ import annotations

import time

import asyncpg
import pytest
import redis

from spine_advanced.celery.reaper import LOCK_KEY, Reaper
from spine_advanced.celery.testing import celery_env, options_of
from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.testing import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
def runtimes(advanced_pg_url, redis_broker):
    """A runtime on the shared Redis and one whose broker is a closed port, same queue."""
    env = celery_env(advanced_pg_url, redis_broker, SPINE_REDELIVER_AFTER="1.5")
    up = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    down_env = {**env, "SPINE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    down = build_runtime(TIER, Settings(advanced_pg_url, options_of(down_env)))
    queue = env["SPINE_CELERY_QUEUE"]
    broker = redis.Redis.from_url(redis_broker)
    try:
        yield up, down, lambda: broker.llen(queue)
    finally:
        broker.delete(queue)
        down.close()
        up.close()


def reaper_of(runtime):
    return Reaper(runtime.backend, runtime.extras["database"], runtime.store)


def test_an_execution_whose_message_never_left_is_sent_once_overdue_and_not_again_at_once(
    runtimes,
):
    up, down, queued_messages = runtimes
    execution = down.dispatcher.submit("test.noop")
    assert execution.warnings and queued_messages() == 0
    reaper = reaper_of(up)
    assert reaper.tick()
    assert queued_messages() == 0  # not overdue yet (SPINE_REDELIVER_AFTER=1.5)
    time.sleep(1.6)
    assert reaper.tick()
    assert queued_messages() == 1
    assert reaper.tick()
    assert queued_messages() == 1  # backoff: the next re-send waits twice as long
    assert up.dispatcher.get(execution.id).status is ExecutionStatus.QUEUED


def test_only_one_reaper_works_at_a_time(runtimes, advanced_pg_url):
    up, _, _ = runtimes
    reaper = reaper_of(up)

    async def hold_and_tick():
        conn = await asyncpg.connect(advanced_pg_url)
        try:
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
            import anyio

            return await anyio.to_thread.run_sync(reaper.tick)
        finally:
            await conn.close()

    import asyncio

    assert asyncio.run(hold_and_tick()) is False
    assert reaper.tick() is True


def test_a_running_execution_whose_worker_stopped_beating_is_requeued_and_sent(runtimes):
    up, _, queued_messages = runtimes
    execution = up.dispatcher.submit("test.noop")
    assert queued_messages() == 1
    assert up.store.claim(execution.id, "dead-worker") is not None
    time.sleep(2.1)  # SPINE_LEASE_SECONDS=2
    assert reaper_of(up).tick()
    row = up.dispatcher.get(execution.id)
    assert row.status is ExecutionStatus.QUEUED
    assert queued_messages() == 2
    reasons = [e.payload.get("reason", "") for e in up.dispatcher.events(execution.id)]
    assert any("lease expired" in r for r in reasons)
