"""The pipeline registry and PipelineGroup (v1)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from spine_core import registry as registry_module
from spine_core.errors import InvalidParams, UnknownPipeline, WorkflowDefinitionError
from spine_core.groups import GroupStep, PipelineGroup
from spine_core.registry import PipelineContext, Registry, pipeline
from spine_core.results import StepResult
from spine_core.workflow import Step, StepKind, Workflow


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str
    days: int = Field(1, ge=1)


class Nested(BaseModel):
    window: Window
    symbols: list[str] = []


def noop(params, ctx: PipelineContext) -> StepResult:
    return StepResult.ok(None)


def test_decorator_registers(registry):
    @registry.pipeline("otc.ingest", params=Window, description="Load a file")
    def ingest(params: Window, ctx: PipelineContext) -> StepResult:
        return StepResult.ok(params.days)

    assert registry.get_pipeline("otc.ingest") is ingest
    assert ingest.params_model is Window and ingest.description == "Load a file"
    assert registry.names() == ["otc.ingest"]


def test_module_decorator_uses_docstring_and_needs_add(registry):
    @pipeline("otc.normalize")
    def normalize(params, ctx):
        """Normalize raw prints."""
        return StepResult.ok(None)

    assert normalize.description == "Normalize raw prints."
    assert registry.names() == []
    registry.add(normalize)
    assert registry.pipelines() == {"otc.normalize": normalize}


def test_duplicate_names_are_rejected(registry):
    registry.add(pipeline("a")(noop))
    with pytest.raises(WorkflowDefinitionError, match="'a' is already registered"):
        registry.add(pipeline("a")(noop))
    with pytest.raises(WorkflowDefinitionError, match="already registered"):
        registry.add(Workflow("a", (Step.lambda_("x", lambda c: 1),)))


def test_unknown_name_lists_the_known_ones(registry):
    registry.add(pipeline("otc.ingest")(noop), pipeline("otc.normalize")(noop))
    registry.add(Workflow("otc.daily", (Step.pipeline("i", "otc.ingest"),)))
    with pytest.raises(UnknownPipeline) as info:
        registry.resolve("otc.ingset")
    message = str(info.value)
    assert "'otc.ingset'" in message
    assert "otc.daily, otc.ingest, otc.normalize" in message
    with pytest.raises(UnknownPipeline, match=r"otc\.ingest, otc\.normalize"):
        registry.get_pipeline("nope")


def test_unknown_name_in_an_empty_registry(registry):
    with pytest.raises(UnknownPipeline, match=r"'x'$"):
        registry.resolve("x")


def test_resolve_wraps_a_pipeline_in_a_one_step_workflow(registry):
    registry.add(pipeline("p")(noop))
    workflow = registry.resolve("p")
    assert workflow.name == "p"
    assert [(s.name, s.kind, s.pipeline_name) for s in workflow.steps] == [
        ("p", StepKind.PIPELINE, "p")
    ]


def test_param_errors_name_the_field(registry):
    registry.add(pipeline("w", params=Window)(noop), pipeline("n", params=Nested)(noop))
    with pytest.raises(InvalidParams) as info:
        registry.validate_params("w", {"days": 0})
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"start", "days"}
    assert "start:" in str(info.value) and "days:" in str(info.value)
    assert "invalid params for w" in str(info.value)
    with pytest.raises(InvalidParams) as info:
        registry.validate_params("n", {"window": {"start": "2024-03-05", "days": "x"}})
    assert [e["field"] for e in info.value.errors] == ["window.days"]


def test_unknown_params_are_rejected_for_direct_runs(registry):
    registry.add(pipeline("w", params=Window)(noop), pipeline("plain")(noop))
    with pytest.raises(InvalidParams) as info:
        registry.validate_params("w", {"start": "2024-03-05", "dyas": 3})
    assert info.value.errors == [{"field": "dyas", "message": "unknown parameter"}]
    with pytest.raises(InvalidParams, match="bogus: unknown parameter"):
        registry.validate_params("plain", {"bogus": 1})


def test_validated_params_are_json_ready(registry):
    registry.add(pipeline("w", params=Window)(noop))
    assert registry.validate_params("w", {"start": "2024-03-05"}) == {
        "start": "2024-03-05",
        "days": 1,
    }


def test_workflow_params_model(registry):
    registry.add(Workflow("wf", (Step.lambda_("a", lambda c: 1),), params_model=Window))
    assert registry.validate_params("wf", {"start": "s"}) == {"start": "s", "days": 1}
    with pytest.raises(InvalidParams, match="start"):
        registry.validate_params("wf", {})
    registry.add(Workflow("free", (Step.lambda_("a", lambda c: 1),)))
    assert registry.validate_params("free", {"anything": [1]}) == {"anything": [1]}


def test_check_references(registry):
    registry.add(Workflow("wf", (Step.pipeline("a", "missing.pipeline"),)))
    with pytest.raises(UnknownPipeline, match=r"missing\.pipeline"):
        registry.check_references()


class FakeEntryPoint:
    def __init__(self, name, target):
        self.name = name
        self._target = target
        self.loads = 0

    def load(self):
        self.loads += 1
        return self._target


def test_entry_points_load_lazily_and_once(monkeypatch):
    def register(reg: Registry) -> None:
        reg.add(pipeline("thirdparty.pipe")(noop))
        reg.add(Workflow("thirdparty.flow", (Step.pipeline("p", "thirdparty.pipe"),)))

    ep = FakeEntryPoint("thirdparty", register)
    groups = []

    def fake_entry_points(*, group):
        groups.append(group)
        return [ep]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    reg = Registry()
    assert ep.loads == 0
    assert reg.names() == ["thirdparty.flow", "thirdparty.pipe"]
    reg.get_pipeline("thirdparty.pipe")
    reg.resolve("thirdparty.flow")
    assert ep.loads == 1 and groups == ["spine.pipelines"]
    Registry(load_entry_points=False).names()
    assert ep.loads == 1


def test_entry_point_name_clash_is_reported(monkeypatch):
    monkeypatch.setattr(
        registry_module,
        "entry_points",
        lambda *, group: [FakeEntryPoint("x", lambda reg: reg.add(pipeline("dup")(noop)))],
    )
    reg = Registry()
    reg.add(pipeline("dup")(noop))
    with pytest.raises(WorkflowDefinitionError, match="'dup' is already registered"):
        reg.names()


# ---- PipelineGroup ------------------------------------------------------------------------------


def test_group_compiles_to_a_workflow_in_dependency_order():
    group = PipelineGroup(
        "otc.daily",
        [
            GroupStep("metrics", "otc.metrics.daily", depends_on=["normalize"]),
            GroupStep("normalize", "otc.normalize", depends_on=["ingest"]),
            GroupStep("ingest", "otc.ingest", params={"file": "x.psv"}),
            GroupStep("report", "otc.report"),
        ],
        version=3,
        description="daily",
    )
    workflow = group.to_workflow()
    assert isinstance(workflow, Workflow)
    assert [s.name for s in workflow.steps] == ["ingest", "normalize", "metrics", "report"]
    assert all(s.kind is StepKind.PIPELINE for s in workflow.steps)
    assert workflow.steps[0].params == {"file": "x.psv"} and workflow.steps[1].params is None
    assert (workflow.name, workflow.version, workflow.description) == ("otc.daily", 3, "daily")


def test_group_ties_keep_declared_order():
    group = PipelineGroup(
        "g", [GroupStep("b", "p"), GroupStep("a", "p"), GroupStep("c", "p", depends_on=["a"])]
    )
    assert [s.name for s in group.execution_order()] == ["b", "a", "c"]


def test_group_rejects_cycles():
    group = PipelineGroup(
        "g",
        [
            GroupStep("ok", "p"),
            GroupStep("a", "p", depends_on=["b"]),
            GroupStep("b", "p", depends_on=["a"]),
        ],
    )
    with pytest.raises(WorkflowDefinitionError, match="cycle among: a, b"):
        group.to_workflow()


def test_group_rejects_unknown_dependencies_and_duplicates():
    with pytest.raises(WorkflowDefinitionError, match="depends on unknown step 'nope'"):
        PipelineGroup("g", [GroupStep("a", "p", depends_on=["nope"])]).to_workflow()
    with pytest.raises(WorkflowDefinitionError, match="two steps named 'a'"):
        PipelineGroup("g", [GroupStep("a", "p"), GroupStep("a", "q")]).to_workflow()


def test_group_registers_and_runs_as_a_workflow(registry, make_engine):
    order = []

    def make(name):
        def fn(params, ctx):
            order.append(name)
            return StepResult.ok(name)

        return pipeline(name)(fn)

    registry.add(make("p.a"), make("p.b"), make("p.c"))
    registry.add(
        PipelineGroup(
            "grp",
            [
                GroupStep("c", "p.c", depends_on=["b"]),
                GroupStep("b", "p.b", depends_on=["a"]),
                GroupStep("a", "p.a"),
            ],
        )
    )
    result = make_engine().run(registry.get_workflow("grp"), run_id="r")
    assert result.succeeded and order == ["p.a", "p.b", "p.c"]
    assert dict(result.context.outputs) == {"a": "p.a", "b": "p.b", "c": "p.c"}
