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
