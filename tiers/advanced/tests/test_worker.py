from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.testing import ServerThread, spine_cmd, spine_env

pytestmark = pytest.mark.postgres

PIPELINES = "spine_intermediate.testing:register_test_pipelines"


def test_worker_start_runs_submissions_over_http_with_the_existing_settings(empty_pg_url):
    env = spine_env(
        empty_pg_url,
        SPINE_TIER="advanced",
        SPINE_LEASE_SECONDS="5",
        SPINE_HEARTBEAT_INTERVAL="0.5",
    )
    subprocess.run(spine_cmd("db", "init"), env=env, check=True, capture_output=True)
    api_rt = build_runtime(TIER, Settings(empty_pg_url, {"pipeline_modules": PIPELINES}))
    app = create_app(runtime=api_rt, settings=Settings(empty_pg_url, {"api_worker": "none"}))
    worker = subprocess.Popen(
        spine_cmd("worker", "start", "--concurrency", "2"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            ids = []
            for i in range(20):
                r = http.post("/executions", json={"pipeline": "test.sleep", "params": {"n": i}})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            deadline = time.monotonic() + 30
            done: list = []
            while time.monotonic() < deadline and len(done) < 20:
                page = http.get("/executions", params={"status": "completed", "limit": 50}).json()
                done = page["items"]
                time.sleep(0.1)
            assert sorted(e["id"] for e in done) == sorted(ids)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        api_rt.close()
    assert worker.returncode == 0, out
    assert "started: 2 threads" in out
