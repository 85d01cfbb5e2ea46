from __future__ import annotations

import time

import asyncpg
import pytest

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core import ExecutionStatus
from spine_core.notifications import FALLBACK_POLL_SECONDS
from spine_core.tier import Settings
from spine_intermediate.pg.loop import AsyncBridge

pytestmark = pytest.mark.postgres

PIPELINES = "spine_intermediate.testing:register_test_pipelines"
# well under the fallback poll: only an announcement can end a wait this fast
PROMPT = FALLBACK_POLL_SECONDS * 0.8


@pytest.fixture
def two_runtimes(advanced_pg_url):
    """A worker's runtime and a submitter's (whose own backend never runs), as two processes."""
    settings = Settings(advanced_pg_url, {"pipeline_modules": PIPELINES, "workers": "1"})
    worker, submitter = build_runtime(TIER, settings), build_runtime(TIER, settings)
    worker.backend.start()
    yield worker, submitter
    worker.backend.stop(2)
    worker.close()
    submitter.close()


def _submit_and_wait(submitter):
    started = time.monotonic()
    execution = submitter.dispatcher.submit("test.noop")
    done = submitter.dispatcher.wait(execution.id, timeout=10)
    return done, time.monotonic() - started


def test_an_idle_worker_and_a_waiter_learn_of_changes_without_polling(two_runtimes):
    _worker, submitter = two_runtimes
    time.sleep(FALLBACK_POLL_SECONDS * 1.5)  # the worker is idle, backed off to the fallback
    for _ in range(3):
        done, took = _submit_and_wait(submitter)
        assert done.status is ExecutionStatus.COMPLETED
        assert took < PROMPT, took


def test_the_listener_reconnects_after_its_connection_is_killed(two_runtimes, advanced_pg_url):
    _worker, submitter = two_runtimes
    listener = submitter.extras["listener"]
    killed = listener.server_pid
    bridge = AsyncBridge("test-kill")

    async def kill():
        conn = await asyncpg.connect(dsn=advanced_pg_url, timeout=5)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", killed)
        finally:
            await conn.close()

    try:
        bridge.call(kill())
    finally:
        bridge.close()
    deadline = time.monotonic() + 10
    while (listener.server_pid == killed or not listener.connected.is_set()) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert listener.reconnects == 1 and listener.connected.is_set()
    done, took = _submit_and_wait(submitter)
    assert done.status is ExecutionStatus.COMPLETED
    assert took < PROMPT, took
