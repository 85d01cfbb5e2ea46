"""Nothing lost or stuck on Celery: a SIGKILLed worker, a broker that lost its messages, a
broker that was down at submit. Every execution still completes, once, with all its data."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from spine_advanced.celery.testing import CeleryWorker, celery_env, options_of
from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.testing import free_port, step_calls

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STEPS = ["one", "two", "three", "four"]


def submit_counted(rt, root, n, pause, http=None):
    """`n` test.counted runs, each in its own folder; through `http` (the API) if given."""
    ids = []
    for i in range(n):
        folder = root / f"run{i}"
        folder.mkdir()
        params = {"dir": str(folder), "pause": pause}
        if http is None:
            ids.append(rt.dispatcher.submit("test.counted", params).id)
            continue
        answer = http.post("/executions", json={"pipeline": "test.counted", "params": params})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


def assert_all_completed_once_and_whole(rt, ids, root):
    rows = [rt.dispatcher.get(i) for i in ids]
    assert [r.status for r in rows] == [ExecutionStatus.COMPLETED] * len(ids)
    for i, row in enumerate(rows):
        events = [e.event_type.value for e in rt.dispatcher.events(row.id)]
        assert events.count("completed") == 1, events
        outputs = row.result["outputs"]
        assert [outputs[s] for s in STEPS] == [{"step": s} for s in STEPS]
        calls = step_calls(root / f"run{i}")
        assert set(calls) == set(STEPS)  # every step ran; one interrupted step may have re-run
        assert len(calls) <= len(STEPS) + 1


def count(rt, status):
    return rt.store.count_by_status().get(status, 0)


def test_sigkill_of_the_worker_process_group_mid_run_loses_nothing_submitted_over_http(
    advanced_pg_url, redis_broker, tmp_path
):
    env = celery_env(advanced_pg_url, redis_broker)
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    app = create_app(runtime=rt, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    try:
        first = CeleryWorker(env, concurrency=3).start()
        try:
            with TestClient(app) as http:
                ids = submit_counted(rt, tmp_path, 30, pause=0.05, http=http)
            wait_until(lambda: count(rt, "completed") >= 5, 15, lambda: first.output[-2000:])
        finally:
            first.kill()
        assert count(rt, "completed") < 30
        with CeleryWorker(env, concurrency=3) as second:
            wait_until(
                lambda: count(rt, "completed") == 30,
                20,
                lambda: f"{rt.store.count_by_status()}\n{second.output[-2000:]}",
            )
        assert_all_completed_once_and_whole(rt, ids, tmp_path)
        requeued = [
            e.payload.get("reason", "")
            for i in ids
            for e in rt.dispatcher.events(i)
            if e.event_type.value == "queued"
        ]
        assert any("lease expired" in r for r in requeued)
    finally:
        rt.close()


def test_a_broker_restart_that_loses_every_message_loses_no_execution(
    advanced_pg_url, own_redis, tmp_path
):
    env = celery_env(advanced_pg_url, own_redis.url)
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    try:
        with CeleryWorker(env, concurrency=2) as worker:
            ids = submit_counted(rt, tmp_path, 20, pause=0.05)
            wait_until(lambda: count(rt, "completed") >= 2, 15, lambda: worker.output[-2000:])
            own_redis.restart()
            assert count(rt, "completed") < 20
            wait_until(
                lambda: count(rt, "completed") == 20,
                20,
                lambda: f"{rt.store.count_by_status()}\n{worker.output[-2000:]}",
            )
            assert "re-sent" in worker.output
        assert_all_completed_once_and_whole(rt, ids, tmp_path)
    finally:
        rt.close()


def test_an_unreachable_broker_at_submit_answers_202_with_a_warning_then_runs_once_it_is_up(
    advanced_pg_url, tmp_path
):
    from spine_advanced.celery.testing import OwnRedis, require

    require(OwnRedis.unavailable_reason())
    port = free_port()  # nothing listens here yet
    env = celery_env(advanced_pg_url, f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    rt = build_runtime(TIER, Settings(advanced_pg_url, options_of(env)))
    app = create_app(runtime=rt, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    try:
        with TestClient(app) as http:
            answer = http.post("/executions", json={"pipeline": "test.noop"})
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["status"] == "queued"
        [warning] = body["warnings"]
        assert f"redis://:***@127.0.0.1:{port}/0 unreachable" in warning
        assert "s3cret-pw" not in answer.text
        health = rt.backend.health()
        assert not health.healthy
        assert f"broker redis://:***@127.0.0.1:{port}/0 unreachable" in health.detail
        assert "s3cret-pw" not in repr(health)
        assert rt.dispatcher.get(body["id"]).status is ExecutionStatus.QUEUED
        with OwnRedis(port), CeleryWorker(env, concurrency=1) as worker:
            done = rt.dispatcher.wait(body["id"], timeout=15)
            assert done.status is ExecutionStatus.COMPLETED, worker.output[-2000:]
            assert "s3cret-pw" not in worker.output
    finally:
        rt.close()
