from __future__ import annotations

import json
import re
import zipfile
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from spine_basic.cli import main
from spine_basic.cli.run import parse_param
from spine_basic.migrations import LATEST_VERSION
from spine_otc.generator import generate
from spine_otc.layout import HEADER_LINE
from spine_otc.metrics import METRIC_FIELDS
from spine_otc.sample import sample_path

HEADER = HEADER_LINE + "\n"


@pytest.fixture
def cli(db_env):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def counts(cli) -> dict[str, int]:
    result = cli("shell", input="import json; print(json.dumps(store.table_counts()))\n")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_one_line_error(result, pattern: str) -> None:
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output


def test_db_init_prints_schema_version_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPINE_DATABASE_URL", raising=False)
    runner = CliRunner()
    first = runner.invoke(main, ["db", "init"])
    assert first.exit_code == 0, first.output
    assert f"schema version {LATEST_VERSION}" in first.stdout
    assert (tmp_path / "spine.db").exists()
    again = runner.invoke(main, ["db", "init"])
    assert "up to date" in again.stdout and f"schema version {LATEST_VERSION}" in again.stdout


def test_run_daily_then_query_metrics_json(cli):
    result = cli("run", "otc.daily", "-p", f"file={sample_path()}")
    assert result.exit_code == 0, result.output
    assert "otc.daily: completed" in result.stdout
    assert re.search(r"normalize\s+ok.*records=3000 valid=2991 invalid=9", result.stdout)
    out = cli("query", "metrics", "--format", "json")
    rows = json.loads(out.stdout)
    assert rows and all(list(row) == list(METRIC_FIELDS) for row in rows)
    one = cli("query", "metrics", "--symbol", "AAPL", "--date", "2024-03-05", "--format", "json")
    assert [(r["symbol"], r["trade_date"]) for r in json.loads(one.stdout)] == [
        ("AAPL", "2024-03-05")
    ]
    ranged = cli(
        "query", "metrics", "--from", "2024-03-05", "--to", "2024-03-06", "--format", "csv"
    )
    lines = ranged.stdout.strip().splitlines()
    assert lines[0] == ",".join(METRIC_FIELDS)
    assert {ln.split(",")[0] for ln in lines[1:]} == {"2024-03-05", "2024-03-06"}
    table = cli("query", "metrics", "--symbol", "AAPL")
    assert table.stdout.splitlines()[0].split() == list(METRIC_FIELDS)


def test_running_the_same_file_again_changes_no_row_counts(cli):
    assert cli("run", "otc.daily", "-p", f"file={sample_path()}").exit_code == 0
    before = counts(cli)
    again = cli("run", "otc.daily", "-p", f"file={sample_path()}")
    assert again.exit_code == 0, again.output
    after = counts(cli)
    for table in (
        "otc_batches",
        "otc_trades_raw",
        "otc_trades",
        "otc_rejects",
        "otc_metrics_daily",
    ):
        assert after[table] == before[table], table


def test_run_json_prints_the_execution(cli):
    result = cli("run", "otc.daily", "-p", f"file={sample_path()}", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["name"] == "otc.daily"
    assert [s["step"] for s in data["result"]["steps"]] == ["ingest", "normalize", "metrics"]


def test_gate_failure_keeps_raw_then_looser_threshold_normalizes_without_recapture(cli, tmp_path):
    assert cli("run", "otc.daily", "-p", f"file={sample_path()}").exit_code == 0
    bad = tmp_path / "bad.psv"
    gen = cli(
        "otc",
        "generate",
        "--rows",
        "4000",
        "--days",
        "2",
        "--symbols",
        "3",
        "--seed",
        "11",
        "--bad-rate",
        "0.05",
        "--out",
        str(bad),
    )
    assert gen.exit_code == 0, gen.output
    before = counts(cli)
    failed = cli("run", "otc.daily", "-p", f"file={bad}")
    assert failed.exit_code == 1
    assert_one_line_error(failed, r"reject_rate=0\.05")
    after_fail = counts(cli)
    assert after_fail["otc_trades"] == before["otc_trades"]
    assert after_fail["otc_metrics_daily"] == before["otc_metrics_daily"]
    assert after_fail["otc_trades_raw"] == before["otc_trades_raw"] + 4000
    source = f"file:{bad.resolve()}"
    status = cli("shell", input=f"print([b.status.value for b in otc.list_batches({source!r})])\n")
    assert "['gate_failed']" in status.stdout

    ok = cli("run", "otc.daily", "-p", f"file={bad}", "-p", "max_reject_rate=0.1")
    assert ok.exit_code == 0, ok.output
    final = counts(cli)
    assert final["otc_trades_raw"] == after_fail["otc_trades_raw"]
    assert final["otc_batches"] == after_fail["otc_batches"]
    assert final["otc_trades"] == before["otc_trades"] + 3800
    assert final["otc_rejects"] == before["otc_rejects"] + 200


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("run", "no.such.pipeline"), r"unknown pipeline or workflow 'no.such.pipeline'"),
        (("run", "otc.daily", "-p", "oops"), r"bad parameter 'oops'"),
        (("run", "otc.daily", "-p", "file=x.psv", "-p", "bogus=1"), r"bogus"),
        (("run", "otc.daily", "-p", "file=x.psv", "-p", "max_reject_rate=7"), r"max_reject_rate"),
        (("run", "otc.daily", "-p", "file=/no/such/file.psv"), r"no such file"),
        (("query", "metrics", "--date", "2024-02-30"), r"not a date"),
        (("--db", "postgresql://u:secret@host/db", "status"), r"install market-spine-intermediate"),
        (("--tier", "platinum", "status"), r"tier 'platinum' is not installed"),
    ],
)
def test_errors_are_one_line_without_traceback(cli, args, pattern):
    result = cli(*args)
    assert_one_line_error(result, pattern)
    assert "secret" not in result.output


def test_schema_behind_says_run_db_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--db", "sqlite:///other.db", "status"])
    assert_one_line_error(result, r"run spine db init")


def test_version_lists_distributions_and_active_tier():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    for name in ("spine-core", "spine-otc", "market-spine-basic"):
        assert f"{name} {version(name)}\n" in result.stdout
    assert "active tier: basic (market-spine-basic)" in result.stdout


def test_status_shows_url_schema_counts_and_latest(cli):
    cli("run", "otc.daily", "-p", f"file={sample_path()}")
    result = cli("status")
    assert result.exit_code == 0
    assert "database: sqlite:///" in result.stdout
    assert f"schema:   version {LATEST_VERSION}" in result.stdout
    assert re.search(r"otc_trades_raw\s+3,000", result.stdout)
    assert re.search(r"otc\.daily\s+completed", result.stdout)


def test_list_shows_pipelines_workflows_and_step_support(cli):
    result = cli("list")
    assert result.exit_code == 0
    for name in ("otc.ingest", "otc.normalize", "otc.metrics.daily", "otc.daily"):
        assert name in result.stdout
    assert "needs Step.pipeline -> runs on basic" in result.stdout
    assert "version 1 (new runs start on 1)" in result.stdout


def test_shell_with_piped_stdin(cli):
    result = cli(
        "shell", input="print(store)\nprint(type(otc).__name__, sorted(registry.names()))\n"
    )
    assert result.exit_code == 0, result.output
    assert "SqliteLedgerStore(" in result.stdout
    assert "SqliteOtcStore ['otc.backfill', 'otc.daily'" in result.stdout
    assert ">>>" not in result.stdout


def test_parse_param_json_else_string():
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("rate=0.1") == ("rate", 0.1)
    assert parse_param("xs=[1, 2]") == ("xs", [1, 2])
    assert parse_param("file=/tmp/a.psv") == ("file", "/tmp/a.psv")
    assert parse_param("s=") == ("s", "")


def test_extend_cli_adds_and_replaces_commands(monkeypatch, db_env):
    from dataclasses import replace

    from spine_basic.tier import TIER

    def extend(group: click.Group) -> None:
        @click.command("status")
        def status() -> None:
            click.echo("replaced status")

        @click.command("worker")
        def worker() -> None:
            click.echo("worker here")

        group.add_command(status)
        group.add_command(worker)

    monkeypatch.delenv("SPINE_TIER")
    upper = replace(
        TIER, name="upper", distribution="market-spine-upper", rank=20, extend_cli=extend
    )
    monkeypatch.setattr("spine_basic.cli.app.installed_tiers", lambda: [TIER, upper])
    monkeypatch.setattr(
        "spine_basic.cli.app.active_tier",
        lambda name=None: (
            upper
            if (name or __import__("os").environ.get("SPINE_TIER", "upper")) == "upper"
            else TIER
        ),
    )
    runner = CliRunner()
    assert runner.invoke(main, ["worker"]).stdout == "worker here\n"
    assert runner.invoke(main, ["status"]).stdout == "replaced status\n"
    # Under the lower tier the extension does not apply.
    basic = runner.invoke(main, ["--tier", "basic", "status"])
    assert "schema:" in basic.stdout
    assert runner.invoke(main, ["--tier", "basic", "worker"]).exit_code != 0


def test_unexpected_exception_is_one_line_and_debug_shows_traceback(cli, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaput")

    monkeypatch.setattr("spine_basic.cli.status.open_runtime", boom)
    result = cli("status")
    assert_one_line_error(result, r"error: RuntimeError: kaput \(use --debug")
    debug = cli("--debug", "status")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "RuntimeError: kaput" in debug.stderr


def test_generate_is_deterministic(cli, tmp_path):
    a, b = tmp_path / "a.psv", tmp_path / "b.psv"
    for out in (a, b):
        r = cli(
            "otc",
            "generate",
            "--rows",
            "500",
            "--days",
            "2",
            "--symbols",
            "3",
            "--seed",
            "5",
            "--out",
            str(out),
        )
        assert r.exit_code == 0 and "wrote 500 rows" in r.stdout
    assert a.read_bytes() == b.read_bytes()
    generate(tmp_path / "c.psv", rows=500, days=2, symbols=3, seed=5)
    assert (tmp_path / "c.psv").read_bytes() == a.read_bytes()


def test_otc_demo_initializes_runs_the_sample_and_prints_metrics_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPINE_DATABASE_URL", raising=False)
    runner = CliRunner()
    first = runner.invoke(main, ["otc", "demo"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    out = first.stdout
    assert "database: sqlite:///spine.db" in out and f"sample:   {sample_path()}" in out
    assert (tmp_path / "spine.db").exists()
    assert f"applied {LATEST_VERSION} migration(s)" in out
    assert f"schema version {LATEST_VERSION}" in out
    assert "otc.daily: completed" in out
    assert re.search(r"normalize\s+ok.*records=3000 valid=2991 invalid=9", out)
    header = next(ln for ln in out.splitlines() if ln.startswith("trade_date"))
    assert header.split() == list(METRIC_FIELDS)
    assert len(re.findall(r"^2024-03-0[456]  ", out, re.M)) == 15
    assert "nothing was added" not in out

    again = runner.invoke(main, ["otc", "demo"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "is up to date" in again.stdout and "otc.daily: completed" in again.stdout
    assert "nothing was added" in again.stdout
    assert len(re.findall(r"^2024-03-0[456]  ", again.stdout, re.M)) == 15
    counts = json.loads(
        runner.invoke(main, ["shell"], input="import json; print(json.dumps(otc.table_counts()))\n")
        .stdout.strip()
        .splitlines()[-1]
    )
    assert counts["otc_trades_raw"] == 3000 and counts["otc_trades"] == 2991


def test_otc_demo_honours_db_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = CliRunner().invoke(main, ["--db", url, "otc", "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"database: {url}" in result.stdout
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "spine.db").exists()


def test_a_higher_tier_command_says_what_to_install(cli, monkeypatch):
    from spine_basic.tier import TIER

    monkeypatch.setattr("spine_basic.cli.app.installed_tiers", lambda: [TIER])
    assert_one_line_error(
        cli("worker", "start"),
        r"error: spine worker needs market-spine-intermediate \(active tier: basic\); "
        r"install it with: pip install --find-links dist market-spine-intermediate \(in a clone",
    )
    assert_one_line_error(cli("dlq", "list"), r"error: spine dlq needs market-spine-advanced")


def test_a_higher_tier_that_is_installed_but_not_active_is_named(cli, monkeypatch):
    from dataclasses import replace

    from spine_basic.tier import TIER

    intermediate = replace(
        TIER, name="intermediate", distribution="market-spine-intermediate", rank=20
    )
    monkeypatch.setattr("spine_basic.cli.app.installed_tiers", lambda: [TIER, intermediate])
    monkeypatch.setattr("spine_basic.cli.app.active_tier", lambda name=None: TIER)
    assert_one_line_error(
        cli("worker", "start"),
        r"error: spine worker needs market-spine-intermediate, which is installed but not active",
    )


def test_a_file_with_no_data_rows_completes_with_a_warning(cli, tmp_path):
    from spine_otc.layout import HEADER_LINE

    empty = tmp_path / "empty.psv"
    empty.write_text(f"{HEADER_LINE}\n0\n")
    result = cli("run", "otc.daily", "-p", f"file={empty}")
    assert result.exit_code == 0, result.output
    assert "otc.daily: completed" in result.output
    assert "gate 'the file has data rows' failed: observed record_count=0" in result.output
    full = cli("run", "otc.daily", "-p", f"file={sample_path()}")
    assert "data rows" not in full.output


def test_debug_on_a_successful_run_says_what_happened(cli):
    quiet = cli("run", "otc.daily", "-p", f"file={sample_path()}")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    debug = cli("--debug", "run", "otc.daily", "-p", f"file={sample_path()}")
    assert debug.exit_code == 0, debug.output
    execution_id = re.search(r"\(execution (\S+)\)", debug.stdout).group(1)
    log = debug.stderr
    assert re.search(r"DEBUG spine\.cli: tier basic, database sqlite:///\S+", log), log
    assert f"submitted otc.daily as execution {execution_id}" in log
    assert "'file': " in log  # the params as they will run
    for step in ("ingest", "normalize", "metrics"):
        assert re.search(rf"step {step}: ok in \d+\.\d+s", log), log
    assert "gate 'max reject_rate' passed" in log  # passing gates too, not only failures
    assert re.search(rf"execution {execution_id} completed in \d+\.\d+s", log)


def test_spine_pipeline_modules_work_on_basic_too(cli, monkeypatch, tmp_path):
    module = tmp_path / "my_pipelines.py"
    module.write_text(
        "from spine_core.registry import pipeline\n"
        "from spine_core.results import StepResult\n\n"
        "@pipeline('mine.hello')\n"
        "def hello(params, ctx):\n"
        "    return StepResult.ok({'said': 'hello'})\n\n"
        "def register(registry):\n"
        "    registry.add(hello)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SPINE_PIPELINE_MODULES", "my_pipelines:register")
    result = cli("run", "mine.hello")
    assert result.exit_code == 0, result.output
    assert "mine.hello: completed" in result.stdout
    monkeypatch.setenv("SPINE_PIPELINE_MODULES", "no_such_module_here:register")
    assert_one_line_error(
        cli("run", "mine.hello"), r"SPINE_PIPELINE_MODULES: cannot load 'no_such_module_here"
    )


def metrics_json(cli) -> list[dict]:
    result = cli("query", "metrics", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_month_in_zipped_parts_is_two_sources_with_the_metrics_of_the_whole_month(
    cli, tmp_path, make_db, monkeypatch
):
    month = tmp_path / "FNSQsh202403.txt"
    args = ["--rows", "6001", "--days", "3", "--symbols", "4", "--seed", "3", "--bad-rate", "0.002"]
    made = cli("otc", "generate", *args, "--out", str(month), "--zip-parts", "2")
    assert made.exit_code == 0, made.output
    part1, part2 = tmp_path / "FNSQsh202403_1.zip", tmp_path / "FNSQsh202403_2.zip"
    assert part1.is_file() and part2.is_file() and not month.exists()

    first = cli("run", "otc.daily", "-p", f"file={part1}", "--json")
    assert first.exit_code == 0, first.output
    after_first = counts(cli)
    second = cli("run", "otc.daily", "-p", f"file={part2}", "--json")
    assert second.exit_code == 0, second.output
    ingest = json.loads(second.stdout)["result"]["steps"][0]["output"]
    assert ingest["source_key"] == "finra:FNSQsh202403_2" and ingest["restatement"] is False
    both = counts(cli)
    assert both["otc_batches"] == 2 and both["otc_trades_raw"] == 6001
    assert both["otc_trades"] + both["otc_rejects"] == 6001
    assert both["otc_trades"] > after_first["otc_trades"] + 2900  # part 2 removed nothing
    split = metrics_json(cli)

    again = cli("run", "otc.daily", "-p", f"file={part2}")
    assert again.exit_code == 0
    assert {t: n for t, n in counts(cli).items() if t.startswith("otc_")} == {
        t: n for t, n in both.items() if t.startswith("otc_")
    }

    whole = tmp_path / "whole.txt"
    assert cli("otc", "generate", *args, "--out", str(whole)).exit_code == 0
    monkeypatch.setenv("SPINE_DATABASE_URL", f"sqlite:///{make_db(tmp_path / 'whole.db')}")
    assert cli("run", "otc.daily", "-p", f"file={whole}").exit_code == 0
    assert metrics_json(cli) == split


@pytest.mark.parametrize(
    ("members", "pattern"),
    [
        ({"a.txt": HEADER, "b.txt": HEADER}, r"holds 2 files \(a\.txt, b\.txt\): expected one"),
        ({"empty/": ""}, r"holds no file: expected one text file"),
        (None, r"not a ZIP archive"),
    ],
)
def test_a_zip_that_is_not_one_text_file_is_a_one_line_error(cli, tmp_path, members, pattern):
    path = tmp_path / "FNSQsh202403.zip"
    if members is None:
        path.write_text(HEADER)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in members.items():
                archive.writestr(name, text)
    result = cli("run", "otc.daily", "-p", f"file={path}")
    assert_one_line_error(result, pattern)
    assert counts(cli)["otc_batches"] == 0


def test_same_base_name_elsewhere_keeps_both_days_and_a_restatement_says_what_it_replaced(
    cli, tmp_path
):
    header = "MarketCenter|Symbol|Date|Time|ShortType|Size|Price|LinkIndicator"

    def write(path, *rows):
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join([header, *rows, str(len(rows))]) + "\n")
        return path

    day1 = write(tmp_path / "day1" / "trades.psv", "Q|AAPL|20240304|09:30:02|S|100|170.0|A")
    day2 = write(tmp_path / "day2" / "trades.psv", "Q|AAPL|20240311|09:30:02|S|100|171.0|A")
    for path in (day1, day2):
        result = cli("run", "otc.daily", "-p", f"file={path}")
        assert result.exit_code == 0, result.output
        assert "restated" not in result.output
    write(day1, "Q|AAPL|20240304|09:30:02|S|100|172.0|A", "Q|AAPL|20240304|10:00:00|S|5|172.0|A")
    restated = cli("run", "otc.daily", "-p", f"file={day1}")
    assert restated.exit_code == 0, restated.output
    assert re.search(
        r"restated: batch [0-9a-f]{32} on 2024-03-04: 1 trades replaced by 2", restated.output
    )
    metrics = json.loads(cli("query", "metrics", "--format", "json").output)
    assert [(m["trade_date"], m["trade_count"]) for m in metrics] == [
        ("2024-03-04", 2),
        ("2024-03-11", 1),
    ]
    assert counts(cli)["otc_trades_raw"] == 4
