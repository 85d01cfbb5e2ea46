"""Issue 11 item 1: the API reads only files inside SPINE_DATA_DIRS; uploads; the API token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from spine_core.errors import ConfigurationError
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.api.security import check_bind
from spine_otc import sample_path

pytestmark = pytest.mark.postgres

TOKEN = "s3cret-token"


def _app(pg_url, **options):
    return TestClient(
        create_app(Settings(pg_url, {"api_worker": "embedded", "workers": "1", **options})),
        raise_server_exceptions=False,
    )


def _wait(client, execution_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/executions/{execution_id}").json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} not finished: {body}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def client(module_pg_url, data):
    with _app(module_pg_url, data_dirs=str(data)) as c:
        yield c


def test_no_data_folder_by_default_refuses_every_server_file(module_pg_url):
    with _app(module_pg_url) as c:
        r = c.post(
            "/executions", json={"pipeline": "otc.daily", "params": {"file": str(sample_path())}}
        )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "file" in message and "SPINE_DATA_DIRS" in message


@pytest.mark.parametrize("pipeline", ["otc.daily", "otc.ingest"])
def test_files_outside_the_data_folders_are_refused_before_any_row(client, data, pipeline):
    secret = data.parent / "secret.psv"
    secret.write_text("password: hunter2\n")
    (data / "link.psv").unlink(missing_ok=True)
    (data / "link.psv").symlink_to(secret)
    before = client.get("/executions", params={"limit": 500}).json()["items"]
    for path in ["/etc/passwd", f"{data}/../secret.psv", f"{data}/link.psv", "relative.psv"]:
        r = client.post("/executions", json={"pipeline": pipeline, "params": {"file": path}})
        assert r.status_code == 422, (path, r.text)
        assert "outside" in r.json()["error"]["message"]
        assert "hunter2" not in r.text and "root:" not in r.text
    assert client.get("/executions", params={"limit": 500}).json()["items"] == before


def test_a_file_inside_a_data_folder_runs(client, data):
    target = data / "inside.psv"
    target.write_bytes(sample_path().read_bytes())
    r = client.post(
        "/executions", json={"pipeline": "otc.daily", "params": {"file": f"{data}/./inside.psv"}}
    )
    assert r.status_code == 202, r.text
    assert r.json()["params"]["file"] == str(target.resolve())
    assert _wait(client, r.json()["id"])["status"] == "completed"


def test_a_framing_error_quotes_no_file_content(client, data):
    leaky = data / "leaky.psv"
    leaky.write_text("root:x:0:0:root:/root:/bin/bash\n")
    r = client.post("/executions", json={"pipeline": "otc.daily", "params": {"file": str(leaky)}})
    done = _wait(client, r.json()["id"])
    assert done["status"] == "failed"
    assert "line 1" in done["error"] and "header" in done["error"]
    assert "root" not in done["error"].replace(str(data), "")


def test_upload_stores_the_file_in_the_data_folder_and_can_start_the_run(client, data):
    content = sample_path().read_bytes()
    stored = client.post("/otc/files", params={"name": "day1.psv"}, content=content)
    assert stored.status_code == 201, stored.text
    path = stored.json()["path"]
    assert path.startswith(str(data)) and path.endswith("/day1.psv")
    assert Path(path).read_bytes() == content and stored.json()["execution"] is None
    started = client.post(
        "/otc/files", params={"name": "day1.psv", "start": "true"}, content=iter([content])
    )
    assert started.status_code == 201, started.text
    assert started.json()["path"] == path
    assert _wait(client, started.json()["execution"]["id"])["status"] == "completed"


@pytest.mark.parametrize("name", ["../evil.psv", "a/b.psv", ".hidden", ""])
def test_upload_names_are_plain_file_names(client, name):
    r = client.post("/otc/files", params={"name": name}, content=b"x")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_upload_over_the_limit_is_refused_and_leaves_nothing(module_pg_url, tmp_path):
    with _app(module_pg_url, data_dirs=str(tmp_path), api_max_upload_bytes="1000") as c:
        r = c.post("/otc/files", params={"name": "big.psv"}, content=iter([b"x" * 600] * 3))
        assert r.status_code == 413 and "1000 bytes" in r.json()["error"]["message"]
        assert (
            c.post("/otc/files", params={"name": "ok.psv"}, content=b"x" * 900).status_code == 201
        )
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["ok.psv"]


def test_upload_without_a_data_folder_says_how_to_configure_one(module_pg_url):
    with _app(module_pg_url) as c:
        r = c.post("/otc/files", params={"name": "x.psv"}, content=b"x")
    assert r.status_code == 503 and "SPINE_DATA_DIRS" in r.json()["error"]["message"]


def test_a_configured_token_guards_writes_and_leaves_reads_open(module_pg_url, data):
    with _app(module_pg_url, data_dirs=str(data), api_token=TOKEN) as c:
        body = {"pipeline": "otc.ingest", "params": {"file": str(data / "none.psv")}}
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]:
            r = c.post("/executions", json=body, headers=headers)
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in r.text
            assert (
                c.post("/otc/files", params={"name": "a.psv"}, headers=headers).status_code == 401
            )
        ok = c.post("/executions", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 202, ok.text
        assert c.get("/executions").status_code == 200
        assert c.get("/otc/metrics/daily").status_code == 200


def test_without_a_token_the_server_binds_only_to_loopback():
    with pytest.raises(ConfigurationError, match="SPINE_API_TOKEN"):
        check_bind("spine-host.invalid", {})
    check_bind("127.0.0.1", {})
    check_bind("spine-host.invalid", {"api_token": TOKEN})


def test_reads_can_be_guarded_too(module_pg_url):
    with _app(module_pg_url, api_token=TOKEN, api_token_reads="true") as c:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        for path in [
            "/executions",
            "/executions/x",
            "/executions/x/runs",
            "/otc/metrics/daily",
            "/otc/trades",
        ]:
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers=bearer).status_code in (200, 404), path
        assert c.get("/health").status_code == 200  # liveness stays open for probes
