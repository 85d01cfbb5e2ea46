"""The Celery backend end to end: a real `spine worker start --backend celery` subprocess."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from spine_advanced.celery.testing import CeleryWorker, celery_env, options_of
from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.testing import free_port, spine_cmd, step_calls

pytestmark = pytest.mark.postgres


@contextmanager
def client_runtime(url, env):
    """An in-process runtime sending to the same broker and queue as the worker subprocess."""
    runtime = build_runtime(TIER, Settings(url, options_of(env)))
    try:
        yield runtime
    finally:
        runtime.close()


def wait_all(runtime, ids, timeout=15.0):
    deadline = time.monotonic() + timeout
    return [runtime.dispatcher.wait(i, timeout=max(0.1, deadline - time.monotonic())) for i in ids]


def event_types(runtime, execution_id):
    return [e.event_type.value for e in runtime.dispatcher.events(execution_id)]


def test_submissions_through_the_dispatcher_and_http_complete_on_a_celery_worker(
    advanced_pg_url, redis_broker
):
    env = celery_env(advanced_pg_url, redis_broker)
    with client_runtime(advanced_pg_url, env) as rt, CeleryWorker(env) as worker:
        assert rt.backend.name == "celery"
        direct = [rt.dispatcher.submit("test.sleep", {"n": i}).id for i in range(5)]
        app = create_app(runtime=rt, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
        with TestClient(app) as http:
            answers = [
                http.post("/executions", json={"pipeline": "test.sleep", "params": {"n": i}})
                for i in range(5)
            ]
        assert [a.status_code for a in answers] == [202] * 5
        assert all(a.json()["warnings"] == [] for a in answers)
        ids = direct + [a.json()["id"] for a in answers]
        done = wait_all(rt, ids)
        assert [e.status for e in done] == [ExecutionStatus.COMPLETED] * 10
        assert {e.backend for e in done} == {"celery"}
        assert all(event_types(rt, i).count("completed") == 1 for i in ids)
        health = rt.backend.health()
        assert health.healthy, health.detail
        assert health.info["workers"]
    assert worker.proc.returncode == 0, worker.output


def test_a_multi_step_workflow_a_retried_one_and_a_durable_wait_run_on_celery(
    advanced_pg_url, redis_broker, tmp_path
):
    env = celery_env(advanced_pg_url, redis_broker)
    dirs = {name: tmp_path / name.replace(".", "_") for name in ("counted", "retried", "waits")}
    for folder in dirs.values():
        folder.mkdir()
    with client_runtime(advanced_pg_url, env) as rt, CeleryWorker(env):
        counted = rt.dispatcher.submit("test.counted", {"dir": str(dirs["counted"])})
        retried = rt.dispatcher.submit("test.retried", {"dir": str(dirs["retried"])})
        waits = rt.dispatcher.submit("test.waits", {"dir": str(dirs["waits"])})
        done = wait_all(rt, [counted.id, retried.id, waits.id])
        assert [e.status for e in done] == [ExecutionStatus.COMPLETED] * 3, done
        assert step_calls(dirs["counted"]) == ["one", "two", "three", "four"]
        assert step_calls(dirs["retried"]) == ["one", "two", "two", "two", "three"]
        assert step_calls(dirs["waits"]) == ["one", "two"]
        reasons = [
            e.payload.get("reason")
            for e in rt.dispatcher.events(retried.id) + rt.dispatcher.events(waits.id)
            if e.event_type.value == "queued"
        ]
        assert reasons.count("retry") == 2 and reasons.count("wait") == 1
        started = [
            e.created_at for e in rt.dispatcher.events(waits.id) if e.event_type.value == "started"
        ]
        assert len(started) == 2 and (started[1] - started[0]).total_seconds() >= 1.0


def test_sigterm_is_a_warm_shutdown_the_run_in_flight_finishes(advanced_pg_url, redis_broker):
    env = celery_env(advanced_pg_url, redis_broker)
    without_setting = {k: v for k, v in env.items() if k != "SPINE_BACKEND"}
    with client_runtime(advanced_pg_url, env) as rt:
        # --backend celery alone selects it (SPINE_BACKEND is not set for the worker).
        worker = CeleryWorker(without_setting, 1, ("--backend", "celery")).start()
        try:
            execution = rt.dispatcher.submit("test.sleep", {"seconds": 1.5})
            deadline = time.monotonic() + 10
            while rt.dispatcher.get(execution.id).status is not ExecutionStatus.RUNNING:
                assert time.monotonic() < deadline, worker.output
                time.sleep(0.05)
            assert worker.stop() == 0, worker.output
        finally:
            worker.kill()
        assert rt.dispatcher.get(execution.id).status is ExecutionStatus.COMPLETED


def test_one_workflow_on_rabbitmq(advanced_pg_url, amqp_broker, tmp_path):
    env = celery_env(advanced_pg_url, amqp_broker)
    with client_runtime(advanced_pg_url, env) as rt, CeleryWorker(env):
        execution = rt.dispatcher.submit("test.counted", {"dir": str(tmp_path)})
        done = rt.dispatcher.wait(execution.id, timeout=15)
        assert done.status is ExecutionStatus.COMPLETED
        assert step_calls(tmp_path) == ["one", "two", "three", "four"]
        health = rt.backend.health()
        assert health.healthy, health.detail
        assert "guest:***@127.0.0.1:5672" in health.info["broker"]


def test_the_cli_submits_with_the_broker_down_and_prints_the_masked_warning(advanced_pg_url):
    port = free_port()
    env = celery_env(advanced_pg_url, f"redis://:hunter2@127.0.0.1:{port}/0")
    done = subprocess.run(
        spine_cmd("run", "test.noop", "--no-wait"), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "test.noop: queued" in done.stdout
    assert f"warning: broker redis://:***@127.0.0.1:{port}/0 unreachable" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_an_unknown_backend_is_refused_naming_the_choices(advanced_pg_url):
    env = celery_env(advanced_pg_url, SPINE_BACKEND="kafka")
    done = subprocess.run(
        spine_cmd("run", "test.noop", "--no-wait"), env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "SPINE_BACKEND must be one of local, celery, got 'kafka'" in done.stderr


def test_a_map_runs_its_children_as_celery_messages(advanced_pg_url, redis_broker):
    """Each item is a child execution; its message, and its parent's wake-up, go by Celery."""
    env = celery_env(advanced_pg_url, redis_broker)
    with client_runtime(advanced_pg_url, env) as rt, CeleryWorker(env):
        parent = rt.dispatcher.submit("test.map", {"n": 40})
        done = rt.dispatcher.wait(parent.id, timeout=60)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert done.result["outputs"]["each"] == [i * i for i in range(40)]
        children = rt.extras["runner"].fanout.list_children(parent.id)
        assert len(children) == 40
        assert {c.status for c in children} == {ExecutionStatus.COMPLETED}
        assert {c.backend for c in children} == {"celery"}
