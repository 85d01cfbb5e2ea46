"""`otc.backfill`: the main job on several files, each file a child execution, through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.execution import ExecutionFilter
from spine_core.status import ExecutionStatus
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_otc.generator import generate

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(advanced_pg_url, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runtime = build_runtime(TIER, Settings(advanced_pg_url, {"workers": "2"}))
    settings = Settings(advanced_pg_url, {"api_worker": "none", "data_dirs": str(data)})
    app = create_app(runtime=runtime, settings=settings)
    runtime.backend.start()
    with TestClient(app) as client:
        yield client, runtime, data
    runtime.close()


def test_a_backfill_runs_each_file_as_a_child_and_fills_the_metrics(api):
    client, runtime, data = api
    files = [str(generate(data / f"part{i}.txt", 300, 2, 5, seed=i).path) for i in range(3)]
    r = client.post("/executions", json={"pipeline": "otc.backfill", "params": {"files": files}})
    assert r.status_code == 202, r.text
    done = runtime.dispatcher.wait(r.json()["id"], timeout=60)
    assert done.status is ExecutionStatus.COMPLETED, done.error
    outputs = done.result["outputs"]["files"]
    assert [o["ingest"]["rows"] for o in outputs] == [300, 300, 300]
    children = runtime.store.list_executions(ExecutionFilter(parent_execution_id=done.id))
    assert len(children) == 3 and {c.name for c in children} == {"otc.backfill@1/files"}
    metrics = client.get("/otc/metrics/daily", params={"limit": 500}).json()["items"]
    assert metrics


def test_a_backfill_file_outside_the_data_folders_is_refused_by_index(api, tmp_path):
    client, runtime, data = api
    inside = str(generate(data / "ok.txt", 10, 1, 2, seed=1).path)
    r = client.post(
        "/executions",
        json={"pipeline": "otc.backfill", "params": {"files": [inside, "/etc/passwd"]}},
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "files[1]" in message and "outside the server's data folders" in message
    assert "files[0]" not in message
    assert runtime.store.count_by_status() == {}
