"""`spine doctor`: one line per check, ok/warn/fail, exit 1 on a fail, never a password."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from spine_advanced.doctor import FAIL, OK, WARN, lease_check
from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_basic.cli import main
from spine_core.tier import Settings
from spine_intermediate.testing import free_port

PASSWORD = "s3cret-pw"


def _with_password(url: str) -> str:
    """The same server with a password in the URL (trust auth ignores it)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def doctor(db, *args):
    return CliRunner().invoke(main, ["--tier", "advanced", "--db", db, "doctor", *args])


@pytest.mark.postgres
def test_all_ok_with_a_live_worker_exits_0(advanced_pg_url):
    url = _with_password(advanced_pg_url)
    with build_runtime(TIER, Settings(url, {})) as runtime:
        runtime.backend.start()
        result = doctor(url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = [line.split(None, 1)[1].rsplit("  ", 1)[0].strip() for line in lines]
    assert names == [
        "database",
        "migrations",
        "broker",
        "workers",
        "stuck",
        "dead letters",
        "leases",
    ]
    assert all(line.startswith("ok ") for line in lines), result.output
    assert "not used (local backend)" in result.output
    assert PASSWORD not in result.output


@pytest.mark.postgres
def test_json_format_and_warnings_without_a_worker(advanced_pg_url):
    result = doctor(_with_password(advanced_pg_url), "--format", "json")
    assert result.exit_code == 0, result.output
    checks = {c["check"]: c for c in json.loads(result.output)}
    assert (
        checks["workers"]["status"] == WARN and "spine worker start" in checks["workers"]["detail"]
    )
    assert {c["status"] for n, c in checks.items() if n != "workers"} == {OK}
    assert PASSWORD not in result.output


def test_an_unreachable_database_is_a_fail_line_not_a_traceback():
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/spine"
    result = doctor(url)
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("fail") and "database" in first and "cannot reach PostgreSQL" in first
    assert "Traceback" not in result.output and PASSWORD not in result.output
    as_json = json.loads(doctor(url, "--format", "json").output)
    assert as_json[0]["check"] == "database" and as_json[0]["status"] == FAIL


@pytest.mark.postgres
def test_a_schema_behind_the_code_fails_naming_the_fix(intermediate_pg_url):
    result = doctor(intermediate_pg_url)
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "migrations" in line]
    assert line.startswith("fail") and "spine db init" in line


@pytest.mark.parametrize(
    ("heartbeat", "lease", "status"),
    [(5, 60, OK), (30, 60, WARN), (60, 60, FAIL), (90, 60, FAIL), (5, 0, WARN), (0, 60, FAIL)],
)
def test_lease_settings(heartbeat, lease, status):
    assert lease_check(heartbeat, lease, 30).status == status


@pytest.mark.postgres
def test_celery_broker_down_fails_naming_it_and_up_without_workers_warns(
    advanced_pg_url, redis_broker, monkeypatch
):
    monkeypatch.setenv("SPINE_BACKEND", "celery")
    down = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/5"
    monkeypatch.setenv("SPINE_BROKER_URL", down)
    result = doctor(advanced_pg_url)
    assert result.exit_code == 1, result.output
    broker = next(line for line in result.output.splitlines() if " broker " in line)
    assert broker.startswith("fail") and "127.0.0.1" in broker
    assert PASSWORD not in result.output
    monkeypatch.setenv("SPINE_BROKER_URL", redis_broker)
    result = doctor(advanced_pg_url)
    broker = next(line for line in result.output.splitlines() if " broker " in line)
    assert broker.startswith("warn") and "no Celery worker answers" in broker
