"""What a user reads when a run fails on a SQLite error."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from spine_basic.cli import main
from spine_basic.tier import TIER
from spine_core import ExecutionStatus
from spine_core.tier import Settings
from spine_core.workflow import Step, Workflow


def test_a_database_error_in_a_step_shows_its_type_not_its_text(db_path):
    def insert_twice(ctx):
        with sqlite3.connect(db_path) as conn:
            conn.execute("CREATE TABLE dup_keys (k INTEGER PRIMARY KEY)")
            conn.execute("INSERT INTO dup_keys VALUES (42)")
            conn.execute("INSERT INTO dup_keys VALUES (42)")

    with TIER.open_runtime(Settings(f"sqlite:///{db_path}")) as rt:
        rt.registry.add(Workflow("test.dup", (Step.lambda_("insert", insert_twice),)))
        done = rt.dispatcher.submit("test.dup")
    assert done.status is ExecutionStatus.FAILED
    assert done.error_category == "INFRASTRUCTURE"
    assert done.error == (
        "step 'insert' failed: database error (IntegrityError); "
        "see the worker log, or run again with --debug"
    )


def test_a_command_on_a_file_that_is_not_sqlite_prints_one_line_without_driver_text(
    tmp_path, monkeypatch
):
    not_sqlite = tmp_path / "spine.db"
    not_sqlite.write_bytes(bytes(range(256)) * 4)
    monkeypatch.setenv("SPINE_DATABASE_URL", f"sqlite:///{not_sqlite}")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: database error (DatabaseError); see the worker log, or run again with --debug\n"
    )
