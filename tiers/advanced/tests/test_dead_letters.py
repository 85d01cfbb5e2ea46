"""The dead-letter round trip: retries used up -> dead letters -> retried once the cause is fixed.

Real PostgreSQL, a real LocalBackend worker; `test.flagged` fails until its flag file exists,
under `RetryPolicy(max_attempts=2, initial_interval=0.05)`.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_basic.cli import main
from spine_core.tier import Settings
from spine_intermediate.api import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

PIPELINES = "spine_advanced.testing:register_test_pipelines"


@pytest.fixture
def worker(advanced_pg_url):
    """A started runtime (worker threads) over the test database."""
    settings = Settings(advanced_pg_url, {"pipeline_modules": PIPELINES, "workers": "2"})
    runtime = build_runtime(TIER, settings)
    runtime.backend.start()
    yield runtime
    runtime.close()


@pytest.fixture
def client(worker, advanced_pg_url):
    app = create_app(runtime=worker, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    with TestClient(app) as c:
        yield c


def _until(client, execution_id, status, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/executions/{execution_id}").json()
        if body["status"] == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} never became {status}: {body}")


def test_round_trip_through_the_api(client, tmp_path):
    flag = tmp_path / "flag"
    submitted = client.post(
        "/executions", json={"pipeline": "test.flagged", "params": {"flag": str(flag)}}
    )
    assert submitted.status_code == 202, submitted.text
    dead_id = submitted.json()["id"]
    _until(client, dead_id, "dead_lettered")

    page = client.get("/dead-letters").json()
    assert page["next_cursor"] is None
    [letter] = page["items"]
    assert letter["execution_id"] == dead_id
    assert (letter["reason"], letter["attempts"]) == ("retries exhausted", 2)
    assert "flag is missing" in letter["error"] and letter["retried_as"] is None
    assert client.get(f"/dead-letters/{letter['id']}").json() == letter

    events = client.get(f"/executions/{dead_id}/events").json()["items"]
    status_events = [
        (e["event_type"], e["payload"]["attempt"])
        for e in events
        if not e["event_type"].startswith("stage_")
    ]
    assert status_events == [
        ("created", 1),
        ("queued", 1),
        ("started", 1),
        ("queued", 2),
        ("started", 2),
        ("failed", 2),
        ("dead_lettered", 2),
    ]

    flag.touch()  # the cause is fixed
    retried = client.post(f"/dead-letters/{letter['id']}/retry")
    assert retried.status_code == 202, retried.text
    retry = retried.json()
    assert retry["parent_execution_id"] == dead_id and retry["trigger_source"] == "retry"
    done = _until(client, retry["id"], "completed")
    assert done["result"]["outputs"]["check"] == {"found": "flag"}
    retry_events = client.get(f"/executions/{retry['id']}/events").json()["items"]
    assert [(e["event_type"], e["payload"]["attempt"]) for e in retry_events][-1] == (
        "completed",
        1,
    )

    again = client.post(f"/dead-letters/{letter['id']}/retry")
    assert again.status_code == 409
    assert retry["id"] in again.json()["error"]["message"]
    assert client.post(f"/dead-letters/{letter['id']}/discard").status_code == 409
    assert client.get(f"/dead-letters/{letter['id']}").json()["retried_as"] == retry["id"]
    assert client.get("/dead-letters", params={"open_only": "true"}).json()["items"] == []


def test_unknown_dead_letters_answer_404_and_change_nothing(client):
    for method, path in (
        ("GET", "/dead-letters/nope"),
        ("POST", "/dead-letters/nope/retry"),
        ("POST", "/dead-letters/nope/discard"),
    ):
        r = client.request(method, path)
        assert r.status_code == 404, (path, r.text)
        assert "nope" in r.json()["error"]["message"]
    assert client.get("/executions").json()["items"] == []


def test_pages_of_dead_letters_follow_the_cursor(client, worker):
    store, letters = worker.store, worker.extras["dead_letters"]
    from spine_core.execution import NewExecution
    from spine_core.status import ExecutionStatus as S

    made = []
    for _ in range(3):
        execution = store.create_execution(NewExecution(name="test.noop", status=S.PENDING))
        store.transition(execution.id, S.FAILED, error="boom", error_category="USER_CODE")
        made.append(letters.dead_letter(execution.id, reason="retries exhausted", attempts=1))
    first = client.get("/dead-letters", params={"limit": 2}).json()
    assert [d["id"] for d in first["items"]] == [made[2].id, made[1].id]
    rest = client.get("/dead-letters", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["id"] for d in rest["items"]] == [made[0].id] and rest["next_cursor"] is None


def test_discard_closes_it_and_a_retry_is_then_refused(client, worker):
    store, letters = worker.store, worker.extras["dead_letters"]
    from spine_core.execution import NewExecution
    from spine_core.status import ExecutionStatus as S

    execution = store.create_execution(NewExecution(name="test.noop", status=S.PENDING))
    store.transition(execution.id, S.FAILED, error="boom", error_category="USER_CODE")
    letter = letters.dead_letter(execution.id, reason="retries exhausted", attempts=1)
    discarded = client.post(f"/dead-letters/{letter.id}/discard")
    assert discarded.status_code == 200 and discarded.json()["discarded_at"] is not None
    refused = client.post(f"/dead-letters/{letter.id}/retry")
    assert refused.status_code == 409 and "discarded" in refused.json()["error"]["message"]
    assert len(client.get("/executions").json()["items"]) == 1


def test_health_metrics_count_what_the_ledger_holds(client, tmp_path):
    body = client.get("/health/metrics").json()
    assert body["executions_by_status"] == {} and body["dead_letters"] == 0
    assert body["queue_depth"] == {"normal": 0, "backfill": 0, "slow": 0}
    assert body["live_workers"] == 1 and body["oldest_queued_seconds"] is None
    assert body["stuck"] == {"queued": 0, "running": 0, "cancelling": 0}
    submitted = client.post(
        "/executions", json={"pipeline": "test.flagged", "params": {"flag": str(tmp_path / "f")}}
    )
    _until(client, submitted.json()["id"], "dead_lettered")
    later = client.get("/health/metrics").json()
    assert later["executions_by_status"] == {"dead_lettered": 1} and later["dead_letters"] == 1


def spine(*args, db, ok=True):
    result = CliRunner().invoke(main, ["--tier", "advanced", "--db", db, *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_round_trip_through_the_cli(advanced_pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINE_PIPELINE_MODULES", PIPELINES)
    flag = tmp_path / "flag"
    run = spine("run", "test.flagged", "-p", f"flag={flag}", db=advanced_pg_url, ok=False)
    assert run.exit_code == 1, run.output
    listed = spine("dlq", "list", db=advanced_pg_url).output
    assert "retries exhausted" in listed and "open" in listed
    [letter_id] = [line.split()[0] for line in listed.splitlines()[1:] if line.strip()]
    shown = spine("dlq", "show", letter_id, db=advanced_pg_url).output
    assert "attempts:   2" in shown and "test.flagged" in shown and "flag is missing" in shown

    flag.touch()
    out = spine("dlq", "retry", letter_id, db=advanced_pg_url).output.strip()
    assert out.startswith(f"dead letter {letter_id} retried as execution ")
    retry_id = out.split("execution ", 1)[1].split()[0]
    again = spine("dlq", "retry", letter_id, db=advanced_pg_url, ok=False)
    assert again.exit_code == 1
    assert again.output.strip() == (
        f"error: dead letter {letter_id} was already retried as execution {retry_id}"
    )
    unknown = spine("dlq", "discard", "nope", db=advanced_pg_url, ok=False)
    assert (unknown.exit_code, unknown.output.strip()) == (
        1,
        "error: no dead letter with id 'nope'",
    )

    settings = Settings(advanced_pg_url, {"pipeline_modules": PIPELINES})
    with build_runtime(TIER, settings) as runtime:
        runtime.backend.start()
        done = runtime.dispatcher.wait(retry_id, timeout=15)
    assert done.status.value == "completed" and done.parent_execution_id is not None
    assert "retried as" in spine("dlq", "list", db=advanced_pg_url).output
