import pytest

from spine_core.capabilities import capabilities_up_to
from spine_core.engine import WorkflowEngine
from spine_core.errors import ErrorCategory
from spine_core.registry import Registry
from spine_core.resources import Resources
from spine_core.results import StepStatus
from spine_otc.generator import generate
from spine_otc.memory import InMemoryOtcStore
from spine_otc.pipelines import register
from spine_otc.sample import sample_path
from spine_otc.store import BatchStatus, OtcStore


@pytest.fixture
def store():
    return InMemoryOtcStore()


@pytest.fixture
def run_daily(store):
    registry = Registry(load_entry_points=False)
    register(registry)
    engine = WorkflowEngine(
        registry,
        capabilities_up_to("market-spine-basic"),
        tier="market-spine-basic",
        resources=Resources({OtcStore: store}),
    )
    runs = iter(range(1, 100))

    def run(**params):
        params = registry.validate_params("otc.daily", params)
        return engine.run(registry.get_workflow("otc.daily"), params, run_id=f"r{next(runs)}")

    return run


def test_the_sample_runs_through_the_daily_workflow(run_daily, store):
    result = run_daily(file=str(sample_path()))
    assert result.succeeded, result.error
    assert [s.path for s in result.step_runs] == ["ingest", "normalize", "metrics"]
    assert all(g.passed for s in result.step_runs for g in s.result.gates)
    assert len(result.step_runs[1].result.gates) == 1
    assert len(result.step_runs[2].result.gates) == 2
    assert result.context.output("metrics")["rows"] == 15
    assert store.table_counts()["otc_metrics_daily"] == 15
    result.context.to_json()

    again = run_daily(file=str(sample_path()))
    assert again.succeeded
    assert again.context.output("ingest")["duplicate"] is True
    assert again.context.output("normalize")["already_normalized"] is True


def test_a_failed_reject_gate_can_be_rerun_with_a_looser_threshold(run_daily, store, tmp_path):
    path = generate(tmp_path / "noisy.psv", rows=1000, days=1, symbols=3, seed=2, bad_rate=0.03)
    failed = run_daily(file=str(path.path))
    assert not failed.succeeded
    assert failed.category is ErrorCategory.DATA_QUALITY
    assert "reject rate 3.00%" in failed.error
    assert [s.status for s in failed.step_runs] == [StepStatus.OK, StepStatus.FAILED]
    batch_id = failed.context.output("ingest")["batch_id"]
    assert store.get_batch(batch_id).status is BatchStatus.GATE_FAILED
    assert store.table_counts()["otc_trades"] == 0

    looser = run_daily(file=str(path.path), max_reject_rate=0.05)
    assert looser.succeeded, looser.error
    assert looser.context.output("ingest")["batch_id"] == batch_id
    assert store.table_counts()["otc_trades"] == 970
    assert store.table_counts()["otc_metrics_daily"] == 3
