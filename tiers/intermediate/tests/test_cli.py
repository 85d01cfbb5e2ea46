from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner

from spine_basic.cli import main
from spine_intermediate.pg import PostgresLedgerStore
from spine_intermediate.pg.migrations import MIGRATIONS
from spine_intermediate.pg.otc import PostgresOtcStore
from spine_intermediate.testing import ServerThread, spine_cmd, spine_env
from spine_otc import sample_path
from spine_otc.generator import generate, zip_parts

pytestmark = pytest.mark.postgres


def spine(*args, db, tier="intermediate", ok=True):
    result = CliRunner().invoke(main, ["--tier", tier, "--db", db, *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def basic_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'basic.db'}"
    spine("db", "init", db=url, tier="basic")
    spine("run", "otc.daily", "-p", f"file={sample_path()}", db=url, tier="basic")
    spine("run", "otc.ingest", "-p", "file=/does/not/exist", db=url, tier="basic", ok=False)
    return url


def _metrics(db, tier, *extra):
    out = spine("query", "metrics", "--format", "json", *extra, db=db, tier=tier).stdout
    return json.loads(out)


def _assert_same(a, b):
    assert len(a) == len(b) > 0
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key, va in row_a.items():
            if isinstance(va, float):
                assert row_b[key] == pytest.approx(va, rel=1e-9), key
            else:
                assert row_b[key] == va, key


def test_db_init_run_and_same_metrics_as_basic(empty_pg_url, basic_db):
    first = spine("db", "init", db=empty_pg_url)
    latest = len(MIGRATIONS)
    assert f"applied {latest} migration(s)" in first.stdout
    assert f"schema version {latest}" in first.stdout
    assert "is up to date" in spine("db", "init", db=empty_pg_url).stdout
    run = spine("run", "otc.daily", "-p", f"file={sample_path()}", db=empty_pg_url)
    assert "otc.daily: completed" in run.stdout and "normalize" in run.stdout
    _assert_same(_metrics(basic_db, "basic"), _metrics(empty_pg_url, "intermediate"))
    listed = json.loads(spine("runs", "list", "--json", db=empty_pg_url).stdout)
    assert listed[0]["workflow"] == "otc.daily" and listed[0]["status"] == "completed"
    shown = json.loads(spine("runs", "show", listed[0]["run_id"], "--json", db=empty_pg_url).stdout)
    assert [s["step"] for s in shown["steps"]] == ["ingest", "normalize", "metrics"]
    queued = spine("run", "otc.ingest", "--no-wait", "-p", "file=/nope", db=empty_pg_url)
    assert ": queued (execution" in queued.stdout


def test_errors_are_one_line(empty_pg_url):
    behind = spine("run", "otc.daily", "-p", "file=x", db=empty_pg_url, ok=False)
    assert behind.exit_code == 1
    assert f"schema is at 0, code needs {len(MIGRATIONS)}: run spine db init" in behind.stderr
    down = spine("runs", "list", db="postgresql://bob:hunter2@127.0.0.1:1/spine", ok=False)
    assert "cannot reach PostgreSQL at 127.0.0.1:1/spine" in down.stderr
    assert "hunter2" not in down.stderr + down.stdout


def test_wrong_database_errors_say_what_to_do(pg_url):
    sqlite = spine("runs", "list", db="sqlite:///spine.db", ok=False)
    assert sqlite.exit_code == 1
    assert "needs a postgresql:// database URL, got 'sqlite:///spine.db'" in sqlite.stderr
    assert "for a SQLite database use --tier basic (or SPINE_TIER=basic)" in sqlite.stderr
    missing_url = pg_url.rsplit("/", 1)[0] + "/spine_no_such_database"
    missing = spine("runs", "list", db=missing_url, ok=False)
    assert missing.exit_code == 1
    assert 'database "spine_no_such_database" does not exist' in missing.stderr
    assert "create it with: spine db init" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_import_sqlite_twice(pg_url, basic_db):
    path = basic_db.removeprefix("sqlite:///")
    first = spine("db", "import-sqlite", path, db=pg_url).stdout
    second = spine("db", "import-sqlite", path, db=pg_url).stdout
    rows = {line.split()[0]: line.split() for line in first.splitlines()}
    assert int(rows["otc_trades"][4]) > 0 and int(rows["executions"][4]) == 2
    assert int(rows["otc_trades_raw"][4]) == int(rows["otc_trades_raw"][2]) > 0
    for line in second.splitlines():
        assert line.split()[4] == "0", line
    _assert_same(_metrics(basic_db, "basic"), _metrics(pg_url, "intermediate"))
    store = PostgresLedgerStore.open(pg_url)
    try:
        statuses = sorted(
            e.status.value
            for e in store.list_executions(__import__("spine_core").ExecutionFilter())
        )
        assert statuses == ["completed", "failed"]
        any_id = store.list_executions(__import__("spine_core").ExecutionFilter(limit=1))[0].id
        assert store.list_events(any_id)
    finally:
        store.close()


def test_run_and_query_over_api(pg_url, tmp_path):
    from spine_core.tier import Settings
    from spine_intermediate.api import create_app

    data = tmp_path / "server-data"
    app = create_app(
        Settings(pg_url, {"api_worker": "embedded", "workers": "2", "data_dirs": str(data)})
    )
    with ServerThread(app) as server:
        run = spine(
            "run",
            "--api",
            server.url,
            "otc.daily",
            "-p",
            f"file={sample_path()}",
            db="postgresql://unused@127.0.0.1:1/none",
        )
        assert "otc.daily: completed" in run.stdout
        uploaded = list(data.rglob(sample_path().name))
        assert [p.read_bytes() for p in uploaded] == [sample_path().read_bytes()]
        remote = _metrics(
            "postgresql://unused@127.0.0.1:1/none", "intermediate", "--api", server.url
        )
        local = _metrics(pg_url, "intermediate")
        assert remote == local and remote
        bad = spine("run", "--api", server.url, "no.such", db=pg_url, ok=False)
        assert "unknown pipeline or workflow 'no.such'" in bad.stderr


def test_run_over_api_sends_the_token_from_the_environment(pg_url, tmp_path, monkeypatch):
    from spine_core.tier import Settings
    from spine_intermediate.api import create_app

    options = {"api_worker": "embedded", "workers": "1", "data_dirs": str(tmp_path)}
    app = create_app(Settings(pg_url, {**options, "api_token": "t0ken"}))
    with ServerThread(app) as server:
        args = ("run", "--api", server.url, "otc.daily", "-p", f"file={sample_path()}")
        monkeypatch.delenv("SPINE_API_TOKEN", raising=False)
        refused = spine(*args, db=pg_url, ok=False)
        assert "needs the API token" in refused.stderr and "(HTTP 401)" in refused.stderr
        monkeypatch.setenv("SPINE_API_TOKEN", "t0ken")
        assert "otc.daily: completed" in spine(*args, db=pg_url).stdout


def test_api_start_without_a_token_binds_only_to_loopback(pg_url):
    refused = spine("api", "start", "--host", "spine-host.invalid", db=pg_url, ok=False)
    assert "refusing to bind spine-host.invalid without SPINE_API_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_otc_demo_on_postgres(empty_pg_url):
    first = spine("otc", "demo", db=empty_pg_url)
    assert f"applied {len(MIGRATIONS)} migration(s)" in first.stdout
    assert "otc.daily: completed" in first.stdout
    assert first.stdout.count("\n2024-03-0") == 15
    again = spine("otc", "demo", db=empty_pg_url)
    assert "is up to date" in again.stdout and "nothing was added" in again.stdout


def test_zipped_parts_of_a_month_give_the_metrics_of_the_whole_month(empty_pg_url, tmp_path):
    made = generate(tmp_path / "FNSQsh202403.txt", 4001, 2, 3, seed=8, bad_rate=0.002)
    parts = zip_parts(made, 2, tmp_path, "FNSQsh202403")
    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    spine("db", "init", db=whole, tier="basic")
    spine("run", "otc.daily", "-p", f"file={made.path}", db=whole, tier="basic")
    spine("db", "init", db=empty_pg_url)
    for part in parts:
        run = spine("run", "otc.daily", "-p", f"file={part}", db=empty_pg_url)
        assert "otc.daily: completed" in run.stdout
    _assert_same(_metrics(whole, "basic"), _metrics(empty_pg_url, "intermediate"))


def test_ctrl_c_during_normalize_exits_130_interrupted(pg_url, tmp_path):
    """SIGINT while normalize runs on PostgreSQL: exit 130, `error: interrupted`, no traceback,
    no half-written trades, and no execution left running."""
    big = tmp_path / "big.psv"
    generate(big, rows=600_000, days=3, symbols=50, seed=4)
    process = subprocess.Popen(
        spine_cmd("run", "otc.daily", "-p", f"file={big}"),
        env=spine_env(pg_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    otc = PostgresOtcStore.open(pg_url)
    try:
        deadline = time.monotonic() + 60
        while not otc.list_batches(limit=1):  # captured: normalize has begun
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the file was never captured"
            time.sleep(0.02)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert otc.list_batches()[0].status.value == "captured", "normalize had finished"
        assert otc.table_counts()["otc_trades"] == 0
    finally:
        otc.close()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in stderr
    ledger = PostgresLedgerStore.open(pg_url)
    try:
        assert ledger.count_by_status().get("running", 0) == 0
    finally:
        ledger.close()
