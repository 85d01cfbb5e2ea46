"""Issue 11 item 6: requests that got a 500, were read wrongly, or answered unhelpfully."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from spine_core.tier import Settings
from spine_intermediate.api import create_app

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def client(module_pg_url):
    app = create_app(Settings(module_pg_url, {"api_worker": "none"}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/otc/metrics/daily?offset=9223372036854775808", "offset"),
        ("/otc/trades?offset=9223372036854775808", "offset"),
        ("/otc/metrics/daily?limit=99999999999999999999999", "limit"),
        ("/executions?cursor=a%00b", "cursor"),
        ("/executions?pipeline=a%00b", "pipeline"),
        ("/executions?created_since=0.5", "created_since"),
        ("/executions?created_since=1700000000", "created_since"),
        ("/otc/trades?date=0", "date"),
        ("/otc/metrics/daily?from=1&to=2", "from"),
        ("/executions?name=x", "name"),
        ("/otc/metrics/daily?sym=AAPL", "sym"),
        ("/executions/a%00b", "execution_id"),
    ],
)
def test_bad_queries_are_refused_with_422_naming_the_field(client, path, field):
    r = client.get(path)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and field in error["message"]


def test_iso_dates_and_times_are_still_accepted(client):
    assert client.get("/executions?created_since=2024-03-04T10:00:00Z").status_code == 200
    assert client.get("/executions?created_since=2024-03-04").status_code == 200
    assert client.get("/otc/trades?date=2024-03-04").status_code == 200


def test_405_names_the_allowed_methods(client):
    r = client.delete("/executions")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_invalid_json_says_what_is_wrong_and_where(client):
    r = client.post(
        "/executions",
        content=b'{"pipeline": "otc.daily",}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "invalid JSON" in message and "line 1" in message and "column 26" in message
    assert "0:" not in message


@pytest.mark.parametrize(
    "body",
    [
        {"pipeline": "otc.daily\x00"},
        {"pipeline": "otc.metrics.daily", "params": {"batch_id": "a\x00"}},
        {"pipeline": "otc.metrics.daily", "params": {"batch_id": ["x", {"k\x00": 1}]}},
        {"pipeline": "otc.ingest", "params": {"file": "x"}, "logical_key": "\x00"},
    ],
)
def test_nul_bytes_in_a_submission_are_refused_before_any_row(client, body):
    before = client.get("/executions").json()["items"]
    r = client.post("/executions", json=body)
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["error"]["message"]
    assert client.get("/executions").json()["items"] == before


def test_non_finite_numbers_are_refused(client):
    body = b'{"pipeline": "otc.normalize", "params": {"batch_id": "b", "max_reject_rate": NaN}}'
    r = client.post("/executions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
