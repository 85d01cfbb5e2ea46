from __future__ import annotations

import dataclasses
import itertools
import signal
import subprocess
import time

import httpx
import pytest

from spine_core import ExecutionStatus
from spine_core.capabilities import capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import install_command
from spine_core.events import EventType
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.runtime import build_runtime
from spine_intermediate.testing import (
    ServerThread,
    spine_cmd,
    spine_env,
    step_calls,
    temporary_database,
)
from spine_intermediate.tier import TIER
from spine_otc.generator import generate
from spine_otc.store import OtcStore

pytestmark = pytest.mark.postgres


def _runtime(url, **options):
    opts = {"pipeline_modules": "spine_intermediate.testing:register_test_pipelines", **options}
    return build_runtime(TIER, Settings(url, opts))


def _wait_all(store, ids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = store.count_by_status()
        if counts.get("completed", 0) + counts.get("failed", 0) >= len(ids):
            return
        time.sleep(0.1)
    raise AssertionError(f"not finished: {store.count_by_status()}")


def test_choice_workflow_through_worker_threads(pg_url):
    rt = _runtime(pg_url, workers="2")
    try:
        rt.backend.start()
        small = rt.dispatcher.submit("test.choice", {"size": 3})
        big = rt.dispatcher.submit("test.choice", {"size": 30})
        a = rt.dispatcher.wait(small.id, timeout=20)
        b = rt.dispatcher.wait(big.id, timeout=20)
        assert a.status is ExecutionStatus.COMPLETED and b.status is ExecutionStatus.COMPLETED
        assert a.result["outputs"]["route"]["branch"] == "else"
        assert b.result["outputs"]["route"]["output"] == "big"
        run = rt.store.get_run(big.id)
        assert run[0].step is None and run[0].status == "completed"
        assert [r.step for r in run[1:]] == ["measure", "route/then:big_path", "route"]
        assert [e.event_type for e in rt.store.list_events(big.id)] == [
            EventType.CREATED,
            EventType.QUEUED,
            EventType.STARTED,
            EventType.STAGE_COMPLETED,
            EventType.STAGE_COMPLETED,
            EventType.COMPLETED,
        ]
    finally:
        rt.close()


def test_submissions_without_workers_wait_then_complete(pg_url):
    rt = _runtime(pg_url, workers="3")
    try:
        ids = [rt.dispatcher.submit("test.noop").id for _ in range(10)]
        time.sleep(0.2)
        assert rt.store.count_by_status() == {"queued": 10}
        rt.backend.start()
        _wait_all(rt.store, ids, 20)
        assert rt.store.count_by_status() == {"completed": 10}
    finally:
        rt.close()


def test_stop_hands_back_running_work(pg_url):
    rt = _runtime(pg_url, workers="2")
    try:
        rt.backend.start()
        ids = [rt.dispatcher.submit("test.sleep", {"seconds": 2.0}).id for _ in range(3)]
        deadline = time.monotonic() + 10
        while rt.store.count_by_status().get("running", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        rt.backend.stop(grace=0.2)
        counts = rt.store.count_by_status()
        assert counts.get("running", 0) == 0 and counts == {"queued": 3}, counts
        requeued = [
            i
            for i in ids
            if any(e.event_type is EventType.STARTED for e in rt.store.list_events(i))
        ]
        assert len(requeued) == 2
        types = [e.event_type for e in rt.store.list_events(requeued[0])]
        assert types == [EventType.CREATED, EventType.QUEUED, EventType.STARTED, EventType.QUEUED]
    finally:
        rt.close()


@pytest.mark.slow
def test_200_executions_over_http_through_a_worker_process(pg_url):
    api_rt = _runtime(pg_url)
    app = create_app(runtime=api_rt, settings=Settings(pg_url, {"api_worker": "none"}))
    worker = subprocess.Popen(
        spine_cmd("worker", "start", "--concurrency", "4"),
        env=spine_env(pg_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            t0 = time.monotonic()
            ids = []
            for i in range(200):
                r = http.post("/executions", json={"pipeline": "test.sleep", "params": {"n": i}})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            t_submit = time.monotonic() - t0
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                page = http.get("/executions", params={"status": "completed", "limit": 500}).json()
                if len(page["items"]) == 200:
                    break
                assert worker.poll() is None, worker.stdout.read()
                time.sleep(0.2)
            elapsed = time.monotonic() - t0
            assert len(page["items"]) == 200
            print(
                f"\n200 executions: submit {t_submit:.2f}s, all completed after {elapsed:.2f}s "
                f"({200 / elapsed:.0f}/s end to end)"
            )
        for execution_id in ids:
            types = [e.event_type.value for e in api_rt.store.list_events(execution_id)]
            assert types == [
                "created",
                "queued",
                "started",
                "stage_completed",
                "completed",
            ], (execution_id, types)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        api_rt.close()
    assert worker.returncode == 0, out
    assert "stopped after 200 executions" in out


@pytest.mark.slow
def test_sigterm_mid_run_leaves_nothing_running(pg_url):
    rt = _runtime(pg_url)
    try:
        ids = [rt.dispatcher.submit("test.sleep", {"seconds": 30}).id for _ in range(3)]
        worker = subprocess.Popen(
            spine_cmd("worker", "start", "--concurrency", "2", "--grace", "0.5"),
            env=spine_env(pg_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while rt.store.count_by_status().get("running", 0) < 2:
            assert time.monotonic() < deadline and worker.poll() is None, rt.store.count_by_status()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=20)
        assert worker.returncode == 0, out
        counts = rt.store.count_by_status()
        assert counts == {"queued": 3}, (counts, out)
        assert "handed back" in out
        for i in ids:
            assert rt.store.get_execution(i).status is ExecutionStatus.QUEUED
    finally:
        rt.close()


@pytest.mark.slow
def test_killed_worker_is_detected_and_its_work_requeued(pg_url):
    rt = _runtime(pg_url, heartbeat_interval="0.2", lease_seconds="1.5", worker_grace="0.5")
    worker = subprocess.Popen(
        spine_cmd("worker", "start", "--concurrency", "1"),
        env=spine_env(pg_url, SPINE_HEARTBEAT_INTERVAL="0.2", SPINE_LEASE_SECONDS="1.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        victim = rt.dispatcher.submit("test.sleep", {"seconds": 30}).id
        deadline = time.monotonic() + 20
        while rt.store.get_execution(victim).status is not ExecutionStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.kill()
        worker.wait(10)
        rt.backend.start()  # a new worker notices the expired lease and requeues, then reruns
        deadline = time.monotonic() + 20
        while not any(
            e.payload.get("reason", "").startswith("lease expired")
            for e in rt.store.list_events(victim)
        ):
            assert time.monotonic() < deadline, rt.store.list_events(victim)
            time.sleep(0.1)
    finally:
        if worker.poll() is None:
            worker.kill()
        rt.close()


def test_an_enqueue_only_process_reports_whether_worker_processes_are_alive(pg_url):
    client = _runtime(pg_url)
    worker = _runtime(pg_url, workers="1")
    try:
        health = client.backend.health()
        assert not health.healthy and "spine worker start" in health.detail
        worker.backend.start()
        health = client.backend.health()
        assert health.healthy and "worker process was seen" in health.detail
    finally:
        worker.close()
        client.close()


def _otc_daily_metrics(url, paths, *, workers):
    """Run otc.daily on every file (submitted together, `workers` threads); the metrics."""
    rt = _runtime(url, workers=str(workers))
    try:
        rt.backend.start()
        if workers == 1:
            done = [
                rt.dispatcher.wait(
                    rt.dispatcher.submit("otc.daily", {"file": str(p)}).id, timeout=60
                )
                for p in paths
            ]
        else:
            ids = [rt.dispatcher.submit("otc.daily", {"file": str(p)}).id for p in paths]
            done = [rt.dispatcher.wait(i, timeout=60) for i in ids]
        assert [e.status for e in done] == [ExecutionStatus.COMPLETED] * len(paths), [
            e.error for e in done
        ]
        return rt.resources.get(OtcStore).query_metrics()
    finally:
        rt.close()


def _worker(pg_url, **extra):
    return subprocess.Popen(
        spine_cmd("worker", "start", "--concurrency", "2", "--grace", "1"),
        env=spine_env(pg_url, SPINE_LEASE_SECONDS="1.5", SPINE_HEARTBEAT_INTERVAL="0.2", **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_step_that_kills_its_worker_resumes_from_the_checkpoint(pg_url, tmp_path):
    """Step three SIGKILLs its worker: a new worker finishes; steps one and two ran once."""
    rt = _runtime(pg_url)
    first = _worker(pg_url)
    second = None
    try:
        execution = rt.dispatcher.submit("test.counted", {"dir": str(tmp_path), "kill_in": "three"})
        assert first.wait(20) == -signal.SIGKILL
        assert rt.store.get_execution(execution.id).status is ExecutionStatus.RUNNING
        second = _worker(pg_url)
        done = rt.dispatcher.wait(execution.id, timeout=30)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert step_calls(tmp_path) == ["one", "two", "three", "three", "four"]
        assert sorted(done.result["outputs"]) == ["four", "one", "three", "two"]
        reasons = [
            e.payload.get("reason", "")
            for e in rt.store.list_events(execution.id)
            if e.event_type is EventType.QUEUED
        ]
        assert any("lease expired" in r for r in reasons), reasons
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        rt.close()


def test_spine_runs_resume_continues_a_failed_run(pg_url, tmp_path):
    """Failed in step two of four; `spine runs resume ID` completes it; step one ran once."""
    rt = _runtime(pg_url)
    worker = _worker(pg_url)
    try:
        execution = rt.dispatcher.submit("test.counted", {"dir": str(tmp_path), "fail_in": "two"})
        failed = rt.dispatcher.wait(execution.id, timeout=20)
        assert failed.status is ExecutionStatus.FAILED and "went away" in failed.error
        env = spine_env(pg_url, SPINE_TIER="market-spine-intermediate")
        refused = subprocess.run(
            spine_cmd("runs", "resume", failed.id), env=env, capture_output=True, text=True
        )
        assert refused.returncode == 1
        assert install_command("market-spine-advanced") in refused.stderr
        assert rt.store.get_execution(failed.id).status is ExecutionStatus.FAILED
        advanced = Dispatcher(
            rt.store, rt.backend, rt.registry, capabilities_up_to("market-spine-advanced"), "t"
        )
        resumed = advanced.resume(failed.id)
        assert resumed.status is ExecutionStatus.QUEUED
        done = rt.dispatcher.wait(execution.id, timeout=20)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert step_calls(tmp_path) == ["one", "two", "two", "three", "four"]
    finally:
        _stop(worker)
        rt.close()


def test_retries_follow_their_backoff_through_worker_threads(pg_url, tmp_path):
    """Step two fails twice with ConnectionError; under max_attempts=3 it completes on attempt 3.

    The intermediate runtime with the advanced capabilities (the advanced tier wires the same).
    """
    tier = dataclasses.replace(TIER, capabilities=capabilities_up_to("market-spine-advanced"))
    opts = {"pipeline_modules": "spine_intermediate.testing:register_test_pipelines"}
    rt = build_runtime(tier, Settings(pg_url, {**opts, "workers": "2"}))
    try:
        rt.backend.start()
        execution = rt.dispatcher.submit("test.retried", {"dir": str(tmp_path), "failures": 2})
        done = rt.dispatcher.wait(execution.id, timeout=20)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert step_calls(tmp_path) == ["one", "two", "two", "two", "three"]
        events = rt.store.list_events(execution.id)
        retries = [e for e in events if e.payload.get("reason") == "retry"]
        assert [e.payload["delay_seconds"] for e in retries] == [0.2, 0.4]
        restarts = [e.created_at for e in events if e.event_type is EventType.STARTED]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(restarts)]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps
        stages = (EventType.STAGE_COMPLETED, EventType.STAGE_FAILED)
        attempts = [
            e.payload["attempt"]
            for e in events
            if e.event_type in stages and e.payload["step"] == "two"
        ]
        assert attempts == [1, 2, 3]
    finally:
        rt.close()


def test_otc_daily_runs_of_one_date_on_4_worker_threads_equal_a_sequential_run(pg_url, tmp_path):
    """8 different files for the same dates (all named trades.psv) on 4 worker threads, three
    rounds: every run completes, and the metrics equal those of a sequential run."""
    paths = []
    for n in range(8):
        path = tmp_path / f"folder{n}" / "trades.psv"
        path.parent.mkdir()
        generate(path, rows=400, days=2, symbols=3, seed=n)
        paths.append(path)
    expected = _otc_daily_metrics(pg_url, paths, workers=1)
    assert sum(m.trade_count for m in expected) == 8 * 400
    for round_number in range(3):
        with temporary_database() as url:
            ordered = paths[round_number:] + paths[:round_number]
            assert _otc_daily_metrics(url, ordered, workers=4) == expected


def _advanced_runtime(pg_url, **options):
    tier = dataclasses.replace(TIER, capabilities=capabilities_up_to("market-spine-advanced"))
    opts = {"pipeline_modules": "spine_intermediate.testing:register_test_pipelines", **options}
    return build_runtime(tier, Settings(pg_url, opts))


def test_a_wait_holds_no_worker_and_survives_the_worker_going_away(pg_url, tmp_path):
    """The execution leaves its worker for the wait; another worker finishes it when due."""
    first = _advanced_runtime(pg_url, workers="1")
    first.backend.start()
    execution = first.dispatcher.submit("test.waits", {"dir": str(tmp_path)})
    deadline = time.monotonic() + 10
    while first.store.get_execution(execution.id).due_at is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    parked = first.store.get_execution(execution.id)
    assert parked.status is ExecutionStatus.QUEUED and first.backend.in_flight == []
    first.close()
    second = _advanced_runtime(pg_url, workers="1")
    try:
        second.backend.start()
        done = second.dispatcher.wait(execution.id, timeout=15)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert step_calls(tmp_path) == ["one", "two"]
        assert (done.finished_at - parked.updated_at).total_seconds() >= 0.9
    finally:
        second.close()
