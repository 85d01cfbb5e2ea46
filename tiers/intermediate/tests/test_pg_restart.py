"""A PostgreSQL restart mid-run: the worker hands its executions back instead of waiting a lease.

The test runs its own server (`OwnPostgres`), since it must restart it; the shared one is never
touched.
"""

from __future__ import annotations

import time

import pytest

from spine_core import ExecutionStatus
from spine_core.events import EventType
from spine_core.tier import Settings
from spine_intermediate.runtime import build_runtime
from spine_intermediate.testing import (
    OwnPostgres,
    postgres_bin,
    services_required,
    step_calls,
    temporary_database,
)
from spine_intermediate.tier import TIER

pytestmark = pytest.mark.postgres

LEASE_SECONDS = 60.0
"""Long, so that the lease expiring cannot be what ends the run within the test's bound."""


@pytest.fixture
def own_postgres():
    if postgres_bin("initdb") is None:
        reason = "initdb not found under /usr/lib/postgresql/*/bin: cannot start a private server"
        if services_required():
            pytest.fail(f"SPINE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    with OwnPostgres() as server:
        yield server


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _runtime(url, workers):
    options = {
        "pipeline_modules": "spine_intermediate.testing:register_test_pipelines",
        "workers": str(workers),
        "lease_seconds": str(LEASE_SECONDS),
    }
    return build_runtime(TIER, Settings(url, options))


def _ended(rt, execution_id) -> bool:
    try:
        status = rt.store.get_execution(execution_id).status
    except Exception:
        return False  # the reading side reconnects too; a failed read is retried
    return status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)


def _hand_backs(rt, execution_id):
    return [
        e
        for e in rt.store.list_events(execution_id)
        if e.event_type is EventType.QUEUED and e.payload.get("reason") == "connection lost"
    ]


def test_a_restart_mid_run_hands_the_execution_back_and_it_completes(own_postgres, tmp_path):
    with temporary_database(admin=own_postgres.url) as url:
        rt = _runtime(url, workers=1)
        try:
            rt.backend.start()
            execution = rt.dispatcher.submit("test.counted", {"dir": str(tmp_path), "pause": 0.5})
            _wait_for(lambda: "two" in step_calls(tmp_path), 10, "step two to start")
            restarted_at = time.monotonic()
            # A restart with downtime: step two ends, and its checkpoint fails, while the
            # server is down.
            own_postgres.stop()
            time.sleep(1.0)
            own_postgres.start()
            _wait_for(lambda: _ended(rt, execution.id), 20, "the execution to end")
            assert time.monotonic() - restarted_at < LEASE_SECONDS / 2
            row = rt.store.get_execution(execution.id)
            assert row.status is ExecutionStatus.COMPLETED, (row.error, row.error_category)
            events = rt.store.list_events(execution.id)
            handed_back = [
                e
                for e in events
                if e.event_type is EventType.QUEUED and e.payload.get("reason") == "connection lost"
            ]
            assert len(handed_back) == 1, [(e.event_type, e.payload) for e in events]
            # Resumed from its last checkpoint: step one, checkpointed before the restart,
            # ran once.
            assert step_calls(tmp_path).count("one") == 1, step_calls(tmp_path)
            assert step_calls(tmp_path)[-1] == "four"
        finally:
            rt.close()


def test_a_fast_restart_under_load_leaves_no_execution_running(own_postgres, tmp_path):
    """`pg_ctl restart -m fast` while two workers run short steps: every run completes."""
    with temporary_database(admin=own_postgres.url) as url:
        rt = _runtime(url, workers=2)
        try:
            rt.backend.start()
            folders = [tmp_path / str(n) for n in range(4)]
            ids = []
            for folder in folders:
                folder.mkdir()
                params = {"dir": str(folder), "pause": 0.01}
                ids.append(rt.dispatcher.submit("test.counted", params).id)
            _wait_for(lambda: any(step_calls(f) for f in folders), 10, "a run to start")
            restarted_at = time.monotonic()
            own_postgres.restart()
            _wait_for(lambda: all(_ended(rt, i) for i in ids), 20, "every run to end")
            assert time.monotonic() - restarted_at < LEASE_SECONDS / 2
            for execution_id, folder in zip(ids, folders, strict=True):
                row = rt.store.get_execution(execution_id)
                assert row.status is ExecutionStatus.COMPLETED, (row.error, row.error_category)
                # Only an interrupted step runs again: one extra run per hand-back at most.
                calls = step_calls(folder)
                assert 4 <= len(calls) <= 4 + len(_hand_backs(rt, execution_id)), calls
        finally:
            rt.close()
