from datetime import date
from importlib.metadata import entry_points

import pytest

from spine_core.context import WorkflowContext
from spine_core.errors import ErrorCategory, InvalidParams
from spine_core.quality import Gate, param
from spine_core.registry import PipelineContext, Registry
from spine_core.resources import Resources
from spine_core.results import StepStatus
from spine_otc.generator import generate
from spine_otc.layout import HEADER_LINE
from spine_otc.memory import InMemoryOtcStore
from spine_otc.pipelines import DAILY_WORKFLOW, IngestProgress, register
from spine_otc.sample import sample_path
from spine_otc.store import BatchStatus, OtcStore

GOOD = "Q|AAPL|20240305|09:30:02|S|100|170.1200|A"
BAD = "X|AAPL|20240305|09:30:02|S|100|170.1200|A"


@pytest.fixture
def registry():
    registry = Registry(load_entry_points=False)
    register(registry)
    return registry


@pytest.fixture
def store():
    return InMemoryOtcStore()


@pytest.fixture
def run(registry, store):
    def run(name, params, *, gates=(), run_params=None, resources=None):
        defn = registry.get_pipeline(name)
        ctx = PipelineContext(
            execution_id="test",
            pipeline=name,
            resources=Resources({OtcStore: store, **(resources or {})}),
            gates=tuple(gates),
            run_params=run_params or params,
        )
        return defn.fn(defn.validate(params), ctx)

    return run


def write_file(path, lines):
    path.write_text("\n".join([HEADER_LINE, *lines, str(len(lines))]) + "\n")
    return path


def test_register_adds_the_pipelines_and_the_workflow(registry):
    assert registry.names() == [
        "otc.backfill",
        "otc.daily",
        "otc.ingest",
        "otc.metrics.daily",
        "otc.normalize",
    ]
    workflow = registry.get_workflow("otc.daily")
    assert [s.name for s in workflow.steps] == ["ingest", "normalize", "metrics"]
    assert workflow.pipelines() == {"otc.ingest", "otc.normalize", "otc.metrics.daily"}
    backfill = registry.get_workflow("otc.backfill")
    assert backfill.pipelines() == workflow.pipelines()
    assert backfill.steps[0].kind.value == "map"
    registry.check_references()


def test_the_entry_point_registers_the_domain():
    found = {ep.name: ep.value for ep in entry_points(group="spine.pipelines")}
    assert found["otc"] == "spine_otc.pipelines:register"


def test_workflow_params_and_gates(registry, tmp_path):
    params = registry.validate_params("otc.daily", {"file": str(tmp_path / "f.psv")})
    assert params == {"file": str(tmp_path / "f.psv"), "max_reject_rate": 0.01}
    with pytest.raises(InvalidParams, match="max_reject_rate"):
        registry.validate_params("otc.daily", {"file": "f.psv", "max_reject_rate": 2})
    ctx = WorkflowContext("otc.daily", "run-1", {"file": "f.psv", "max_reject_rate": 0.05})
    ctx = ctx.with_output("ingest", {"batch_id": "b1"})
    ingest_step, normalize_step, metrics_step = DAILY_WORKFLOW.steps
    assert ingest_step.params(ctx) == {"file": "f.psv"}
    assert normalize_step.params(ctx) == {"batch_id": "b1", "max_reject_rate": 0.05}
    assert metrics_step.params(ctx) == {"batch_id": "b1"}
    assert normalize_step.gates == (Gate.max("reject_rate", param("max_reject_rate", 0.01)),)
    assert {g.metric for g in metrics_step.gates} == {"vwap_outside_range", "hhi_out_of_range"}


def test_the_sample_runs_through_every_step(run, store):
    ingested = run("otc.ingest", {"file": str(sample_path())})
    assert ingested.status is StepStatus.OK
    assert ingested.output["rows"] == 3000
    assert ingested.output["source_key"] == f"file:{sample_path().resolve()}"
    assert not ingested.output["duplicate"] and not ingested.output["restatement"]
    batch_id = ingested.output["batch_id"]

    normalized = run("otc.normalize", {"batch_id": batch_id})
    assert normalized.status is StepStatus.OK, normalized.error
    quality = normalized.quality
    assert quality.record_count == 3000
    assert quality.valid_count + quality.invalid_count == 3000
    assert 0 < quality.invalid_rate < 0.01
    assert sum(quality.failure_reasons.values()) == quality.invalid_count
    assert normalized.output["affected_dates"] == ["2024-03-04", "2024-03-05", "2024-03-06"]

    computed = run("otc.metrics.daily", {"batch_id": batch_id})
    assert computed.status is StepStatus.OK, computed.error
    assert computed.output == {"dates": ["2024-03-04", "2024-03-05", "2024-03-06"], "rows": 15}
    assert computed.quality.custom == {"vwap_outside_range": 0.0, "hhi_out_of_range": 0.0}
    assert store.table_counts()["otc_metrics_daily"] == 15


def test_ingesting_the_same_file_twice_adds_nothing(run, store, tmp_path):
    path = write_file(tmp_path / "otc.psv", [GOOD, GOOD])
    first = run("otc.ingest", {"file": str(path)})
    counts = store.table_counts()
    copy = write_file(tmp_path / "renamed.psv", [GOOD, GOOD])
    for again in (run("otc.ingest", {"file": str(path)}), run("otc.ingest", {"file": str(copy)})):
        assert again.status is StepStatus.OK
        assert again.output["duplicate"] is True
        assert again.output["batch_id"] == first.output["batch_id"]
    assert store.table_counts() == counts


def test_new_content_under_a_known_name_is_a_restatement(run, store, tmp_path):
    path = write_file(tmp_path / "otc.psv", [GOOD, GOOD.replace("20240305", "20240304")])
    first = run("otc.ingest", {"file": str(path)})
    run("otc.normalize", {"batch_id": first.output["batch_id"]})
    run("otc.metrics.daily", {"batch_id": first.output["batch_id"]})
    write_file(path, [GOOD.replace("170.1200", "171.0000")])
    second = run("otc.ingest", {"file": str(path)})
    assert second.output["restatement"] is True
    normalized = run("otc.normalize", {"batch_id": second.output["batch_id"]})
    assert normalized.output["affected_dates"] == ["2024-03-05"]
    assert normalized.output["replaced"] == [
        {
            "batch_id": first.output["batch_id"],
            "dates": ["2024-03-05"],
            "trades_before": 1,
            "trades_after": 1,
        }
    ]
    computed = run("otc.metrics.daily", {"batch_id": second.output["batch_id"]})
    assert computed.output["rows"] == 1
    assert [(m.trade_date, m.vwap) for m in store.query_metrics()] == [
        ("2024-03-04", 170.12),
        ("2024-03-05", 171.0),
    ]


def test_the_same_name_in_another_folder_is_another_source(run, store, tmp_path):
    """day1/trades.psv then day2/trades.psv: both days stay, nothing is replaced."""
    (tmp_path / "day1").mkdir()
    (tmp_path / "day2").mkdir()
    day1 = write_file(tmp_path / "day1" / "trades.psv", [GOOD.replace("20240305", "20240304")])
    day2 = write_file(tmp_path / "day2" / "trades.psv", [GOOD.replace("20240305", "20240311")])
    outputs = []
    for path in (day1, day2):
        ingested = run("otc.ingest", {"file": str(path)})
        assert ingested.output["restatement"] is False
        outputs.append(run("otc.normalize", {"batch_id": ingested.output["batch_id"]}).output)
        run("otc.metrics.daily", {"batch_id": ingested.output["batch_id"]})
    assert outputs[1]["replaced"] == []
    assert [m.trade_date for m in store.query_metrics()] == ["2024-03-04", "2024-03-11"]
    assert store.table_counts()["otc_trades"] == 2


def test_a_finra_name_is_one_source_wherever_it_lives(run, store, tmp_path):
    """FNSQsh202403.txt re-downloaded elsewhere restates the dates it covers, keeps the rest."""
    (tmp_path / "jan").mkdir()
    (tmp_path / "again").mkdir()
    first_lines = [GOOD.replace("20240305", "20240304"), GOOD]
    first = write_file(tmp_path / "jan" / "FNSQsh202403.txt", first_lines)
    restated = write_file(
        tmp_path / "again" / "FNSQsh202403.psv", [GOOD.replace("170.1200", "171.0000")] * 2
    )
    a = run("otc.ingest", {"file": str(first)})
    assert a.output["source_key"] == "finra:FNSQsh202403"
    run("otc.normalize", {"batch_id": a.output["batch_id"]})
    b = run("otc.ingest", {"file": str(restated)})
    assert b.output["source_key"] == "finra:FNSQsh202403" and b.output["restatement"] is True
    normalized = run("otc.normalize", {"batch_id": b.output["batch_id"]})
    assert normalized.output["replaced"] == [
        {
            "batch_id": a.output["batch_id"],
            "dates": ["2024-03-05"],
            "trades_before": 1,
            "trades_after": 2,
        }
    ]
    days = [t.trade.trade_date.isoformat() for t in store.query_trades()]
    assert days == ["2024-03-04", "2024-03-05", "2024-03-05"]
    assert store.list_batches("finra:FNSQsh202403", limit=5)[-1].batch_id == a.output["batch_id"]


def test_a_bad_file_keeps_nothing(run, store, tmp_path):
    path = tmp_path / "truncated.psv"
    path.write_text(f"{HEADER_LINE}\n{GOOD}\n{GOOD[:10]}")
    result = run("otc.ingest", {"file": str(path)})
    assert result.status is StepStatus.FAILED
    assert result.category is ErrorCategory.DATA_QUALITY
    assert f"{path}: line 3: missing trailer" in result.error
    assert store.table_counts()["otc_batches"] == 0
    assert store.table_counts()["otc_trades_raw"] == 0


def test_a_missing_file_is_a_validation_failure(run, tmp_path):
    result = run("otc.ingest", {"file": str(tmp_path / "nope.psv")})
    assert result.status is StepStatus.FAILED
    assert result.category is ErrorCategory.VALIDATION
    assert "nope.psv" in result.error


def test_ingest_reports_progress(run, tmp_path):
    path = generate(tmp_path / "big.psv", rows=25_000, days=1, symbols=2, seed=1).path
    seen = []

    def progress(done, total):
        seen.append((done, total))

    result = run("otc.ingest", {"file": str(path)}, resources={IngestProgress: progress})
    assert result.status is StepStatus.OK
    size = path.stat().st_size
    assert len(seen) >= 3
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_reject_gate_refuses_then_a_looser_threshold_normalizes(run, store, tmp_path):
    path = write_file(tmp_path / "otc.psv", [GOOD] * 9 + [BAD])
    batch_id = run("otc.ingest", {"file": str(path)}).output["batch_id"]

    refused = run("otc.normalize", {"batch_id": batch_id})
    assert refused.status is StepStatus.FAILED
    assert refused.category is ErrorCategory.DATA_QUALITY
    assert "reject rate 10.00% (1 of 10 rows)" in refused.error
    assert "max_reject_rate is 1.00%" in refused.error
    assert refused.quality.failure_reasons == {"BAD_VENUE": 1}
    assert store.get_batch(batch_id).status is BatchStatus.GATE_FAILED
    assert store.table_counts()["otc_trades"] == 0
    assert store.table_counts()["otc_rejects"] == 0

    again = run("otc.ingest", {"file": str(path)})
    assert again.output["duplicate"] and again.output["batch_id"] == batch_id
    accepted = run("otc.normalize", {"batch_id": batch_id, "max_reject_rate": 0.2})
    assert accepted.status is StepStatus.OK
    assert accepted.output["trades"] == 9 and accepted.output["rejects"] == 1
    assert store.table_counts()["otc_trades"] == 9


def test_the_step_gate_is_applied_before_commit(run, store, tmp_path):
    path = write_file(tmp_path / "otc.psv", [GOOD] * 19 + [BAD])
    batch_id = run("otc.ingest", {"file": str(path)}).output["batch_id"]
    gate = Gate.max("reject_rate", param("max_reject_rate", 0.01))
    result = run(
        "otc.normalize",
        {"batch_id": batch_id, "max_reject_rate": 0.5},
        gates=[gate],
        run_params={"file": str(path), "max_reject_rate": 0.01},
    )
    assert result.status is StepStatus.FAILED
    assert "max reject_rate" in result.error
    assert store.table_counts()["otc_trades"] == 0


def test_normalizing_an_already_normalized_batch_changes_nothing(run, store, tmp_path):
    path = write_file(tmp_path / "otc.psv", [GOOD, GOOD, BAD] + [GOOD] * 100)
    batch_id = run("otc.ingest", {"file": str(path)}).output["batch_id"]
    first = run("otc.normalize", {"batch_id": batch_id})
    counts = store.table_counts()
    second = run("otc.normalize", {"batch_id": batch_id})
    assert second.status is StepStatus.OK
    assert second.output["already_normalized"] is True
    assert second.quality == first.quality
    assert store.table_counts() == counts


def test_an_older_capture_cannot_overwrite_a_newer_normalized_one(run, store, tmp_path):
    old = write_file(tmp_path / "otc.psv", [GOOD] * 9 + [BAD])
    old_id = run("otc.ingest", {"file": str(old)}).output["batch_id"]
    run("otc.normalize", {"batch_id": old_id})
    write_file(old, [GOOD])
    new_id = run("otc.ingest", {"file": str(old)}).output["batch_id"]
    assert run("otc.normalize", {"batch_id": new_id}).status is StepStatus.OK
    result = run("otc.normalize", {"batch_id": old_id, "max_reject_rate": 0.5})
    assert result.status is StepStatus.FAILED
    assert "superseded" in result.error and new_id in result.error
    assert [t.batch_id for t in store.query_trades()] == [new_id]


def test_unknown_and_unnormalized_batches_fail_clearly(run, tmp_path):
    result = run("otc.normalize", {"batch_id": "nope"})
    assert result.category is ErrorCategory.VALIDATION and "nope" in result.error
    result = run("otc.metrics.daily", {"batch_id": "nope"})
    assert result.category is ErrorCategory.VALIDATION
    path = write_file(tmp_path / "otc.psv", [GOOD])
    batch_id = run("otc.ingest", {"file": str(path)}).output["batch_id"]
    result = run("otc.metrics.daily", {"batch_id": batch_id})
    assert result.status is StepStatus.FAILED
    assert "captured, not normalized" in result.error


def test_metrics_by_dates_or_range(run, store, tmp_path):
    lines = [GOOD, GOOD.replace("20240305", "20240306"), GOOD.replace("20240305", "20240308")]
    batch_id = run("otc.ingest", {"file": str(write_file(tmp_path / "f.psv", lines))}).output[
        "batch_id"
    ]
    run("otc.normalize", {"batch_id": batch_id})
    by_dates = run("otc.metrics.daily", {"dates": ["2024-03-06", "2024-03-05", "2024-03-06"]})
    assert by_dates.output == {"dates": ["2024-03-05", "2024-03-06"], "rows": 2}
    by_range = run("otc.metrics.daily", {"date_from": "2024-03-06", "date_to": "2024-03-08"})
    assert by_range.output["dates"] == ["2024-03-06", "2024-03-07", "2024-03-08"]
    assert by_range.output["rows"] == 2
    assert [m.trade_date for m in store.query_metrics()] == [
        "2024-03-05",
        "2024-03-06",
        "2024-03-08",
    ]
    assert store.query_metrics(date_from=date(2024, 3, 8))[0].symbol == "AAPL"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"batch_id": "b", "dates": ["2024-03-05"]},
        {"date_from": "2024-03-05"},
        {"date_from": "2024-03-06", "date_to": "2024-03-05"},
        {"date_from": "2000-01-01", "date_to": "2024-01-01"},
        {"dates": ["not a date"]},
    ],
)
def test_metrics_params_need_exactly_one_selection(registry, params):
    with pytest.raises(InvalidParams):
        registry.validate_params("otc.metrics.daily", params)


def test_metrics_refused_by_a_step_gate_write_nothing(run, store, tmp_path):
    path = write_file(tmp_path / "f.psv", [GOOD])
    batch_id = run("otc.ingest", {"file": str(path)}).output["batch_id"]
    run("otc.normalize", {"batch_id": batch_id})
    never = Gate.check("never", lambda quality: False)
    result = run("otc.metrics.daily", {"batch_id": batch_id}, gates=[never])
    assert result.status is StepStatus.FAILED
    assert result.category is ErrorCategory.DATA_QUALITY
    assert "never" in result.error
    assert store.table_counts()["otc_metrics_daily"] == 0


def test_a_path_that_is_not_a_regular_file_is_named_for_what_it_is(run, tmp_path):
    import os

    fifo = tmp_path / "pipe.psv"
    os.mkfifo(fifo)
    cases = {
        tmp_path / "missing.psv": "no such file",
        tmp_path: "is a folder, not a file",
        fifo: "not a regular file (a FIFO, device or socket)",
        "/dev/null": "not a regular file (a FIFO, device or socket)",
    }
    for path, expected in cases.items():
        result = run("otc.ingest", {"file": str(path)})
        assert result.status is StepStatus.FAILED
        assert result.error == f"{expected}: {path}", result.error
        assert result.category is ErrorCategory.VALIDATION


def test_a_backfill_takes_one_to_ten_thousand_files(registry):
    from spine_otc.pipelines import MAX_BACKFILL_FILES

    ok = registry.validate_params("otc.backfill", {"files": ["a.psv", "b.psv"]})
    assert ok["files"] == ["a.psv", "b.psv"]
    for files in ([], ["f.psv"] * (MAX_BACKFILL_FILES + 1)):
        with pytest.raises(InvalidParams, match="files"):
            registry.validate_params("otc.backfill", {"files": files})
