from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from spine_basic.cli import main

pytestmark = pytest.mark.postgres


def spine(*args, db, ok=True):
    result = CliRunner().invoke(main, ["--tier", "advanced", "--db", db, *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_cancel_a_queued_run_and_read_its_events(advanced_pg_url):
    queued = spine("run", "otc.ingest", "--no-wait", "-p", "file=x", db=advanced_pg_url).output
    execution_id = queued.rsplit("execution ", 1)[1].rstrip(")\n")
    out = spine("cancel", execution_id, db=advanced_pg_url).output
    assert out.strip() == f"otc.ingest: cancelled (execution {execution_id})"
    events = json.loads(spine("events", execution_id, "--json", db=advanced_pg_url).output)
    assert [e["event"] for e in events] == ["created", "queued", "cancelled"]
    table = spine("events", execution_id, db=advanced_pg_url).output
    assert "cancelled" in table and "seq" in table


def test_cancel_errors_are_one_line(advanced_pg_url):
    queued = spine("run", "otc.ingest", "--no-wait", "-p", "file=x", db=advanced_pg_url).output
    execution_id = queued.rsplit("execution ", 1)[1].rstrip(")\n")
    spine("cancel", execution_id, db=advanced_pg_url)
    again = spine("cancel", execution_id, db=advanced_pg_url, ok=False)
    assert again.exit_code == 1
    assert again.output.strip() == "error: illegal status transition cancelled -> cancelled"
    unknown = spine("events", "nope", db=advanced_pg_url, ok=False)
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "error: no execution with id 'nope'"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("workflow", "expected_calls"),
    [("test.retried", ["one", "two", "two", "two", "three"]), ("test.waits", ["one", "two"])],
)
def test_spine_run_waits_through_retries_and_durable_waits(
    advanced_pg_url, tmp_path, monkeypatch, workflow, expected_calls
):
    """`spine run` returns when the run has ended, not when it first goes back to the queue.

    A retry's backoff and a `Step.wait` put the execution back in the queue with a due time;
    the command's own thread claims it again when it is due.
    """
    monkeypatch.setenv(
        "SPINE_PIPELINE_MODULES", "spine_intermediate.testing:register_test_pipelines"
    )
    out = spine("run", workflow, "-p", f"dir={tmp_path}", "--json", db=advanced_pg_url).output
    execution = json.loads(out)
    assert execution["status"] == "completed", execution
    assert (tmp_path / "calls.txt").read_text().split() == expected_calls


@pytest.mark.timeout(60)
def test_spine_run_of_a_map_runs_its_children_in_the_commands_thread(advanced_pg_url, monkeypatch):
    """With no worker running, `spine run` of a map still ends: its thread runs the children."""
    monkeypatch.setenv(
        "SPINE_PIPELINE_MODULES", "spine_intermediate.testing:register_test_pipelines"
    )
    out = spine("run", "test.map", "-p", "n=12", "--json", db=advanced_pg_url).output
    execution = json.loads(out)
    assert execution["status"] == "completed", execution
    assert execution["result"]["outputs"]["total"] == sum(i * i for i in range(12))


def test_list_shows_every_version_of_a_workflow(advanced_pg_url, monkeypatch):
    monkeypatch.setenv(
        "SPINE_PIPELINE_MODULES", "spine_intermediate.testing:register_test_pipelines"
    )
    out = spine("list", db=advanced_pg_url).output
    assert "versions 1, 2 (new runs start on 2)" in out
    assert "test.map" in out and "needs Step.lambda_, Step.map -> runs on advanced" in out
