from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.tier import TIER
from spine_otc import sample_path

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def client(module_pg_url, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("data")
    settings = Settings(
        module_pg_url,
        {
            "api_worker": "embedded",
            "api_max_body_bytes": "2048",
            "workers": "2",
            "data_dirs": os.pathsep.join([str(uploads), str(sample_path().parent)]),
        },
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _wait(client, execution_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/executions/{execution_id}").json()
        if body["status"] in ("completed", "failed", "cancelled", "dead_lettered"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} not finished: {body}")


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["ready"] is True


def test_submit_daily_and_read_metrics(client):
    r = client.post(
        "/executions", json={"pipeline": "otc.daily", "params": {"file": str(sample_path())}}
    )
    assert r.status_code == 202, r.text
    done = _wait(client, r.json()["id"])
    assert done["status"] == "completed", done
    metrics = client.get("/otc/metrics/daily").json()["items"]
    assert metrics
    one = metrics[0]
    narrowed = client.get(
        "/otc/metrics/daily", params={"symbol": one["symbol"], "date": one["trade_date"]}
    ).json()
    assert narrowed["items"] == [one]
    trades = client.get("/otc/trades", params={"symbol": one["symbol"], "limit": 2}).json()
    assert len(trades["items"]) <= 2 and all(t["symbol"] == one["symbol"] for t in trades["items"])
    listed = client.get(
        "/executions", params={"status": "completed", "pipeline": "otc.daily"}
    ).json()
    assert done["id"] in [e["id"] for e in listed["items"]]


def test_pagination(client):
    ids = [
        client.post(
            "/executions",
            json={"pipeline": "otc.ingest", "params": {"file": str(sample_path().parent / "nope")}},
        ).json()["id"]
        for _ in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "pipeline": "otc.ingest"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/executions", params=params).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:5] == ids[::-1]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "needle"),
    [
        ("post", "/executions", {"pipeline": "no.such"}, 400, "unknown_pipeline", "no.such"),
        (
            "post",
            "/executions",
            {"pipeline": "otc.ingest", "params": {"bogus": 1}},
            422,
            "invalid_params",
            "bogus",
        ),
        ("post", "/executions", {"params": {}}, 422, "invalid_request", "pipeline"),
        (
            "post",
            "/executions",
            {"pipeline": "otc.ingest", "params": {"file": str(sample_path())}, "logical_key": "k"},
            400,
            "missing_capability",
            "market-spine-advanced",
        ),
        ("get", "/executions/doesnotexist", None, 404, "not_found", "doesnotexist"),
        ("get", "/executions?limit=0", None, 422, "invalid_request", "limit"),
        ("get", "/executions?status=bogus", None, 422, "invalid_request", "status"),
        ("get", "/otc/metrics/daily?date=2024-13-01", None, 422, "invalid_request", "date"),
        ("get", "/nowhere", None, 404, "not_found", ""),
    ],
)
def test_errors(client, method, path, body, status, code, needle):
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and needle in err["message"]
    assert "Traceback" not in r.text and "SELECT" not in r.text


def test_body_limit(client):
    big = {"pipeline": "otc.ingest", "params": {"file": "x" * 5000}}
    r = client.post("/executions", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():
        for _ in range(10):
            yield b"x" * 500

    r = client.post("/executions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_lists_endpoints(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/executions",
        "/executions/{execution_id}",
        "/otc/metrics/daily",
        "/otc/trades",
        "/health",
        "/health/ready",
    ):
        assert path in spec["paths"]
    assert "SubmitRequest" in spec["components"]["schemas"]


def test_ready_without_worker_is_503(module_pg_url):
    # A fresh app with no embedded worker, against a database whose workers are all stopped.
    from spine_intermediate.pg import PostgresLedgerStore

    store = PostgresLedgerStore.open(module_pg_url)
    store.db.call(store.db.pool.execute("UPDATE workers SET stopped_at = now()"))
    store.close()
    settings = Settings(module_pg_url, {"api_worker": "none"})
    with TestClient(create_app(settings)) as c:
        r = c.get("/health/ready")
        assert r.status_code == 503
        assert any(reason.startswith("worker:") for reason in r.json()["reasons"])
    _ = TIER


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/executions/abc/events"),
        ("POST", "/executions/abc/cancel"),
        ("GET", "/dead-letters"),
        ("GET", "/dead-letters/7"),
        ("POST", "/dead-letters/7/retry"),
        ("POST", "/dead-letters/7/discard"),
        ("GET", "/health/metrics"),
    ],
)
def test_higher_tier_endpoints_name_what_to_install(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "missing_capability"
    assert "needs market-spine-advanced" in error["message"]
    assert "pip install --find-links dist market-spine-advanced" in error["message"]


def test_higher_tier_endpoints_stay_out_of_the_openapi_document(client):
    documented = set(client.get("/openapi.json").json()["paths"])
    assert not {p for p in documented if "dead-letters" in p or p.endswith(("/events", "/cancel"))}
    assert "/health/metrics" not in documented


def test_the_metrics_schema_is_the_domain_s_field_list():
    from spine_intermediate.api.models import MetricsRow
    from spine_otc.metrics import METRIC_FIELDS

    assert tuple(MetricsRow.model_fields) == METRIC_FIELDS


@pytest.mark.parametrize("path", ["/otc/metrics/daily", "/otc/trades"])
def test_a_symbol_outside_the_domain_rule_is_422_naming_the_field(client, path):
    response = client.get(path, params={"symbol": "bad symbol!"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.symbol"
    assert client.get(path, params={"symbol": "BRK.B"}).status_code == 200


def test_run_history_of_an_execution(client):
    r = client.post(
        "/executions", json={"pipeline": "otc.daily", "params": {"file": str(sample_path())}}
    )
    done = _wait(client, r.json()["id"])
    history = client.get(f"/executions/{done['id']}/runs")
    assert history.status_code == 200, history.text
    body = history.json()
    assert body["run"]["run_id"] == done["id"] and body["run"]["status"] == "completed"
    assert body["run"]["workflow"] == "otc.daily"
    assert [s["step"] for s in body["steps"]] == ["ingest", "normalize", "metrics"]
    assert all(s["status"] == "ok" and s["duration_ms"] >= 0 for s in body["steps"])
    assert body["steps"][0]["detail"]["output"]["rows"] == 3000
    missing = client.get("/executions/doesnotexist/runs")
    assert missing.status_code == 404 and "doesnotexist" in missing.json()["error"]["message"]


def test_executions_can_be_listed_by_parent(client):
    """`?parent=ID` lists the executions linked to ID (retries now, map children later)."""
    runtime = client.app.state.runtime
    failed = runtime.dispatcher.submit("otc.ingest", {"file": "/nonexistent/none.psv"})
    parent = _wait(client, failed.id)
    assert parent["status"] == "failed" and parent["due_at"] is None
    children = [runtime.dispatcher.retry(failed.id).id for _ in range(2)]
    page = client.get("/executions", params={"parent": failed.id}).json()
    assert sorted(e["id"] for e in page["items"]) == sorted(children)
    assert all(e["parent_execution_id"] == failed.id for e in page["items"])
    assert client.get("/executions", params={"parent": "no-such-id"}).json()["items"] == []
