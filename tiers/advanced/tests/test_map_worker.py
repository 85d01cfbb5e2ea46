"""Map fan-out and durable waits through real `spine worker start` processes (advanced tier)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import httpx
import pytest

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.events import EventType
from spine_core.execution import ExecutionFilter
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.testing import ServerThread, spine_cmd, spine_env, step_calls

pytestmark = pytest.mark.postgres

PIPELINES = "spine_intermediate.testing:register_test_pipelines"


def _runtime(url):
    return build_runtime(TIER, Settings(url, {"pipeline_modules": PIPELINES}))


def _worker(url, concurrency: int = 4):
    env = spine_env(
        url, SPINE_TIER="advanced", SPINE_LEASE_SECONDS="1.5", SPINE_HEARTBEAT_INTERVAL="0.2"
    )
    return subprocess.Popen(
        spine_cmd("worker", "start", "--concurrency", str(concurrency), "--grace", "1"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _children(http: httpx.Client, parent_id: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"parent": parent_id, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = http.get("/executions", params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_a_map_over_300_items_runs_300_linked_child_executions(advanced_pg_url):
    rt = _runtime(advanced_pg_url)
    app = create_app(runtime=rt, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    worker = _worker(advanced_pg_url)
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            r = http.post("/executions", json={"pipeline": "test.map", "params": {"n": 300}})
            assert r.status_code == 202, r.text
            parent_id = r.json()["id"]
            done = rt.dispatcher.wait(parent_id, timeout=60)
            assert done.status is ExecutionStatus.COMPLETED, done.error
            assert done.result["outputs"]["each"] == [i * i for i in range(300)]
            children = _children(http, parent_id)
        assert len(children) == 300
        assert {c["status"] for c in children} == {"completed"}
        assert {c["name"] for c in children} == {"test.map@1/each"}
        assert sorted(c["params"]["item"] for c in children) == list(range(300))
    finally:
        _stop(worker)
        rt.close()


def test_a_map_completes_after_its_worker_is_killed_mid_map(advanced_pg_url, tmp_path):
    """Item 40's first run SIGKILLs the worker: a new worker finishes the map, and only the
    children that were in flight at that moment ran twice."""
    rt = _runtime(advanced_pg_url)
    first, second = _worker(advanced_pg_url), None
    try:
        parent = rt.dispatcher.submit("test.map", {"n": 120, "dir": str(tmp_path), "kill_at": 40})
        assert first.wait(30) == -signal.SIGKILL
        second = _worker(advanced_pg_url)
        done = rt.dispatcher.wait(parent.id, timeout=60)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert done.result["outputs"]["total"] == sum(i * i for i in range(120))
        runs = Counter(step_calls(tmp_path))
        assert set(runs) == {f"item{i}" for i in range(120)}
        twice = {name for name, n in runs.items() if n > 1}
        assert "item40" in twice and len(twice) <= 4, twice  # at most the 4 in-flight ones
        assert all(n <= 2 for n in runs.values())
        children = rt.store.list_executions(
            ExecutionFilter(parent_execution_id=parent.id, limit=1000)
        )
        assert len(children) == 120
        assert {c.status for c in children} == {ExecutionStatus.COMPLETED}
    finally:
        _stop(first)
        _stop(second)
        rt.close()


def test_a_durable_wait_survives_the_death_of_its_worker(advanced_pg_url, tmp_path):
    """The worker is SIGKILLed during a 3 s wait; another worker completes the run."""
    rt = _runtime(advanced_pg_url)
    first, second = _worker(advanced_pg_url, 1), None
    try:
        execution = rt.dispatcher.submit("test.waits_long", {"dir": str(tmp_path)})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            events = rt.store.list_events(execution.id)
            if any(e.payload.get("reason") == "wait" for e in events):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never started its wait")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert rt.store.get_execution(execution.id).status is ExecutionStatus.QUEUED
        second = _worker(advanced_pg_url, 1)
        done = rt.dispatcher.wait(execution.id, timeout=30)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert step_calls(tmp_path) == ["one", "two"]
        waited = [e for e in rt.store.list_events(execution.id) if e.event_type is EventType.QUEUED]
        assert waited[-1].payload["reason"] == "wait"
    finally:
        _stop(first)
        _stop(second)
        rt.close()


def test_cancel_of_a_waiting_map_cancels_its_children(advanced_pg_url, tmp_path):
    rt = _runtime(advanced_pg_url)
    try:
        parent = rt.dispatcher.submit("test.map", {"n": 30})
        claimed = rt.store.claim(parent.id, "test-worker")
        runner = rt.extras["runner"]
        waiting = runner.advance(parent.id, claimed=claimed)
        assert waiting.status is ExecutionStatus.QUEUED
        cancelled = rt.dispatcher.cancel(parent.id)
        assert cancelled.status is ExecutionStatus.CANCELLED
        children = rt.extras["runner"].fanout.list_children(parent.id)
        assert len(children) == 30
        assert {c.status for c in children} == {ExecutionStatus.CANCELLED}
    finally:
        rt.close()
