from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_core.tier import Settings
from spine_intermediate.api import create_app

pytestmark = pytest.mark.postgres

PIPELINES = "spine_intermediate.testing:register_test_pipelines"


@pytest.fixture
def client(advanced_pg_url):
    runtime = build_runtime(TIER, Settings(advanced_pg_url, {"pipeline_modules": PIPELINES}))
    app = create_app(runtime=runtime, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    with TestClient(app) as c:
        yield c
    runtime.close()


def _submit(client):
    r = client.post("/executions", json={"pipeline": "test.noop"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_the_advanced_router_serves_events_instead_of_the_501(client):
    execution_id = _submit(client)
    r = client.get(f"/executions/{execution_id}/events")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [e["event_type"] for e in items] == ["created", "queued"]
    assert [e["seq"] for e in items] == sorted(e["seq"] for e in items)
    assert all(e["execution_id"] == execution_id for e in items)
    missing = client.get("/executions/nope/events")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]


def test_cancel_a_queued_execution_then_409_naming_its_status(client):
    execution_id = _submit(client)
    r = client.post(f"/executions/{execution_id}/cancel")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "cancelled"
    again = client.post(f"/executions/{execution_id}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["error"]["message"]
    assert client.post("/executions/nope/cancel").status_code == 404
    events = client.get(f"/executions/{execution_id}/events").json()["items"]
    assert events[-1]["event_type"] == "cancelled"
    assert [e["payload"]["attempt"] for e in events] == [1, 1, 1]


def test_every_endpoint_the_advanced_tier_provides_is_served_not_stubbed(client):
    """The tier's routers are mounted before the 501 answers, so none of them is shadowed."""
    from spine_intermediate.api.app import HIGHER_TIER_ENDPOINTS

    for method, path, distribution in HIGHER_TIER_ENDPOINTS:
        if distribution != "market-spine-advanced":
            continue
        r = client.request(
            method, path.replace("{execution_id}", "x").replace("{dead_letter_id}", "x")
        )
        assert r.status_code != 501, (method, path, r.text)
        assert r.status_code in (200, 202, 404), (method, path, r.text)


def test_the_advanced_routes_are_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/executions/{execution_id}/cancel"]
    assert "get" in paths["/executions/{execution_id}/events"]


def test_the_advanced_writes_need_the_token_and_reads_stay_open(advanced_pg_url):
    runtime = build_runtime(TIER, Settings(advanced_pg_url, {"pipeline_modules": PIPELINES}))
    settings = Settings(advanced_pg_url, {"api_worker": "none", "api_token": "t0ken"})
    try:
        with TestClient(create_app(runtime=runtime, settings=settings)) as c:
            for path in (
                "/dead-letters/x/retry",
                "/dead-letters/x/discard",
                "/executions/x/cancel",
            ):
                assert c.post(path).status_code == 401, path
                authorized = c.post(path, headers={"Authorization": "Bearer t0ken"})
                assert authorized.status_code == 404, path
            assert c.get("/dead-letters").status_code == 200
            assert c.get("/health/metrics").status_code == 200
    finally:
        runtime.close()
