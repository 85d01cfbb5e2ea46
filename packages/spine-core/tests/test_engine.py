"""The workflow engine: every step kind, context passing, gates, capabilities, resume."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict

from spine_core.capabilities import Capability, capabilities_up_to
from spine_core.context import WorkflowContext
from spine_core.errors import ErrorCategory, MissingCapability, UnknownPipeline
from spine_core.execution import utcnow
from spine_core.quality import Gate, QualityMetrics, Severity, param
from spine_core.registry import PipelineContext
from spine_core.results import StepResult, StepStatus
from spine_core.workflow import Step, StepKind, Workflow

FULL = capabilities_up_to("market-spine-full")


def wf(*steps: Step, name: str = "wf") -> Workflow:
    return Workflow(name, steps)


def quality(valid: int, total: int, **custom: float) -> QualityMetrics:
    return QualityMetrics(total, valid, total - valid, custom=dict(custom))


# ---- lambda and context passing ---------------------------------------------------------------


def test_lambda_steps_pass_outputs_and_params(make_engine):
    workflow = wf(
        Step.lambda_("a", lambda ctx: {"n": ctx.params["start"] + 1}),
        Step.lambda_("b", lambda ctx: ctx.output("a")["n"] * 10),
        Step.lambda_("c", lambda ctx: StepResult.ok([ctx.output("b"), ctx.output("missing", "d")])),
    )
    result = make_engine().run(workflow, {"start": 1}, run_id="r1")
    assert result.succeeded and result.error is None
    assert result.context.output("a") == {"n": 2}
    assert result.context.output("b") == 20
    assert result.context.output("c") == (20, "d")
    assert [s.path for s in result.step_runs] == ["a", "b", "c"]
    assert result.to_dict()["outputs"] == {"a": {"n": 2}, "b": 20, "c": [20, "d"]}


def test_each_step_sees_an_immutable_context(make_engine):
    seen: list[WorkflowContext] = []

    def grab(ctx):
        seen.append(ctx)
        return len(ctx.outputs)

    result = make_engine().run(wf(*(Step.lambda_(n, grab) for n in "xyz")), run_id="r")
    assert [len(c.outputs) for c in seen] == [0, 1, 2]
    assert result.context.outputs == {"x": 0, "y": 1, "z": 2}


def test_exception_in_a_lambda_is_a_user_code_failure(make_engine):
    ran = []
    workflow = wf(
        Step.lambda_("boom", lambda ctx: 1 / 0),
        Step.lambda_("after", lambda ctx: ran.append(1)),
    )
    result = make_engine().run(workflow, run_id="r")
    assert not result.succeeded
    assert result.category is ErrorCategory.USER_CODE
    assert "step 'boom' failed" in result.error and "ZeroDivisionError" in result.error
    assert ran == []
    assert [s.status for s in result.step_runs] == [StepStatus.FAILED]


def test_a_failed_step_result_stops_the_run(make_engine):
    workflow = wf(
        Step.lambda_("a", lambda ctx: StepResult.fail("no file", ErrorCategory.INFRASTRUCTURE)),
        Step.lambda_("b", lambda ctx: 1),
    )
    result = make_engine().run(workflow, run_id="r")
    assert result.category is ErrorCategory.INFRASTRUCTURE
    assert result.error == "step 'a' failed: no file"
    assert "b" not in result.context.outputs


def test_non_json_output_fails_the_step_clearly(make_engine):
    workflow = wf(Step.lambda_("price", lambda ctx: Decimal("1.5")), Step.lambda_("b", lambda c: 1))
    result = make_engine().run(workflow, run_id="r")
    assert not result.succeeded
    assert result.category is ErrorCategory.USER_CODE
    assert "step 'price'" in result.error
    assert "JSON" in result.error and "Decimal" in result.error
    assert "price" not in result.context.outputs and "b" not in result.context.outputs


def test_step_timing_is_recorded(make_engine):
    before = utcnow()
    result = make_engine().run(wf(Step.lambda_("slow", lambda ctx: time.sleep(0.03))), run_id="r")
    (run,) = result.step_runs
    assert before <= run.started_at <= run.finished_at <= utcnow()
    assert run.duration_ms >= 25
    assert run.to_dict()["duration_ms"] >= 25 and run.to_dict()["kind"] == "lambda"


def test_skipped_result_is_not_a_failure(make_engine):
    result = make_engine().run(
        wf(
            Step.lambda_("a", lambda ctx: StepResult.skip("nothing new")),
            Step.lambda_("b", lambda c: 1),
        ),
        run_id="r",
    )
    assert result.succeeded
    assert result.step_runs[0].status is StepStatus.SKIPPED
    assert result.step_runs[0].result.reason == "nothing new"
    assert result.context.output("b") == 1


def test_cancel_requested_stops_before_the_next_step(make_engine):
    flag = {"cancel": False}
    workflow = wf(
        Step.lambda_("a", lambda ctx: flag.update(cancel=True)),
        Step.lambda_("b", lambda ctx: 1),
    )
    result = make_engine(cancel_requested=lambda: flag["cancel"]).run(workflow, run_id="r")
    assert result.category is ErrorCategory.CANCELLED
    assert "'b'" in result.error
    assert "b" not in result.context.outputs


# ---- pipeline steps ---------------------------------------------------------------------------


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int
    factor: int = 2


@pytest.fixture
def scale_registry(registry):
    calls: list[tuple[Scale, PipelineContext]] = []

    @registry.pipeline("math.scale", params=Scale)
    def scale(params: Scale, ctx: PipelineContext) -> StepResult:
        calls.append((params, ctx))
        return StepResult.ok(params.n * params.factor)

    registry.calls = calls
    return registry


def test_pipeline_step_with_fixed_params(scale_registry, make_engine):
    result = make_engine().run(
        wf(Step.pipeline("s", "math.scale", {"n": 3, "factor": 5})), run_id="run-9"
    )
    assert result.succeeded, result.error
    assert result.context.output("s") == 15
    _, pctx = scale_registry.calls[0]
    assert pctx.execution_id == "run-9" and pctx.pipeline == "math.scale"


def test_pipeline_step_params_from_context(scale_registry, make_engine):
    workflow = wf(
        Step.lambda_("count", lambda ctx: 7),
        Step.pipeline("s", "math.scale", lambda ctx: {"n": ctx.output("count")}),
    )
    assert make_engine().run(workflow, run_id="r").context.output("s") == 14


def test_pipeline_step_defaults_to_workflow_params_ignoring_extras(scale_registry, make_engine):
    result = make_engine().run(
        wf(Step.pipeline("s", "math.scale")), {"n": 4, "unrelated": "x"}, run_id="r"
    )
    assert result.context.output("s") == 8


def test_pipeline_step_with_bad_params_is_a_validation_failure(scale_registry, make_engine):
    result = make_engine().run(wf(Step.pipeline("s", "math.scale", {"n": "many"})), run_id="r")
    assert result.category is ErrorCategory.VALIDATION
    assert "n:" in result.error


def test_unknown_pipeline_fails_before_any_step(make_engine):
    ran = []
    workflow = wf(Step.lambda_("a", lambda ctx: ran.append(1)), Step.pipeline("b", "no.such"))
    with pytest.raises(UnknownPipeline):
        make_engine().run(workflow, run_id="r")
    assert ran == []


# ---- choice -------------------------------------------------------------------------------------


def choice_workflow(with_else: bool = True) -> Workflow:
    return wf(
        Step.lambda_("size", lambda ctx: ctx.params["size"]),
        Step.choice(
            "pick",
            lambda ctx: ctx.output("size") > 10,
            Step.lambda_("big", lambda ctx: "big"),
            Step.lambda_("small", lambda ctx: "small") if with_else else None,
        ),
        Step.lambda_("after", lambda ctx: ctx.output("pick")),
    )


def test_choice_then_branch(make_engine):
    result = make_engine().run(choice_workflow(), {"size": 50}, run_id="r")
    assert result.context.output("pick") == {"branch": "then", "step": "big", "output": "big"}
    assert [s.path for s in result.step_runs] == ["size", "pick/then:big", "pick", "after"]


def test_choice_else_branch(make_engine):
    result = make_engine().run(choice_workflow(), {"size": 5}, run_id="r")
    assert result.context.output("pick") == {"branch": "else", "step": "small", "output": "small"}


def test_choice_without_else_skips(make_engine):
    result = make_engine().run(choice_workflow(with_else=False), {"size": 5}, run_id="r")
    assert result.succeeded
    pick = next(s for s in result.step_runs if s.path == "pick")
    assert pick.status is StepStatus.SKIPPED
    assert "pick" not in result.context.outputs
    assert result.context.output("after") is None


def test_choice_branch_failure_fails_the_choice(make_engine):
    workflow = wf(
        Step.choice("pick", lambda ctx: True, Step.lambda_("x", lambda ctx: StepResult.fail("bad")))
    )
    result = make_engine().run(workflow, run_id="r")
    assert not result.succeeded and "bad" in result.error


# ---- map ----------------------------------------------------------------------------------------


def test_map_runs_the_body_per_item_with_bounded_concurrency(make_engine):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def body(ctx):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return ctx.params["item"] * 2

    workflow = wf(Step.map("each", list(range(9)), Step.lambda_("double", body), max_concurrency=3))
    result = make_engine().run(workflow, run_id="r")
    assert result.succeeded, result.error
    assert result.context.output("each") == tuple(i * 2 for i in range(9))
    assert 2 <= state["max"] <= 3
    item_paths = sorted(s.path for s in result.step_runs if s.path.startswith("each["))
    assert item_paths == sorted(f"each[{i}]" for i in range(9))


def test_map_items_from_the_context_and_a_workflow_body(make_engine):
    body = Workflow(
        "per_symbol",
        (
            Step.lambda_("upper", lambda ctx: ctx.params["item"].upper()),
            Step.lambda_("tag", lambda ctx: f"{ctx.params['venue']}:{ctx.output('upper')}"),
        ),
    )
    workflow = wf(
        Step.lambda_("symbols", lambda ctx: ["aapl", "msft"]),
        Step.map("each", lambda ctx: ctx.output("symbols"), body),
    )
    result = make_engine().run(workflow, {"venue": "Q"}, run_id="r")
    assert result.succeeded, result.error
    assert [o["tag"] for o in result.context.output("each")] == ["Q:AAPL", "Q:MSFT"]


def test_map_with_a_failing_item_fails_the_step(make_engine):
    def body(ctx):
        if ctx.params["item"] == "bad":
            raise ValueError("cannot parse bad")
        return ctx.params["item"]

    workflow = wf(Step.map("each", ["a", "bad", "c", "d"], Step.lambda_("p", body), 2))
    result = make_engine().run(workflow, run_id="r")
    assert not result.succeeded
    assert "1 of 4 items failed" in result.error
    assert "item 1" in result.error and "cannot parse bad" in result.error
    assert result.category is ErrorCategory.USER_CODE


def test_map_of_nothing_is_an_empty_list(make_engine):
    result = make_engine().run(wf(Step.map("each", [], Step.lambda_("p", lambda c: 1))), run_id="r")
    assert result.succeeded and result.context.output("each") == ()


def test_map_rejects_zero_concurrency():
    from spine_core.errors import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError, match="max_concurrency"):
        Step.map("m", [1], Step.lambda_("p", lambda c: 1), max_concurrency=0)


# ---- wait ---------------------------------------------------------------------------------------


def test_wait_uses_the_injected_sleep(make_engine):
    slept: list[float] = []
    t0 = time.monotonic()
    result = make_engine(sleep=slept.append).run(
        wf(Step.wait("pause", timedelta(seconds=5)), Step.lambda_("after", lambda ctx: 1)),
        run_id="r",
    )
    assert time.monotonic() - t0 < 2, "an injected sleep must not wait in real time"
    assert result.succeeded
    assert sum(slept) == pytest.approx(5.0)
    assert result.context.output("pause") == {"waited_seconds": 5.0}
    assert result.context.output("after") == 1


def test_wait_until_a_past_moment_does_not_sleep(make_engine):
    slept: list[float] = []
    result = make_engine(sleep=slept.append).run(
        wf(Step.wait("pause", until=utcnow() - timedelta(minutes=1))), run_id="r"
    )
    assert result.succeeded and slept == []


def test_wait_stops_when_cancelled(make_engine):
    slept: list[float] = []
    result = make_engine(sleep=slept.append, cancel_requested=lambda: len(slept) >= 2).run(
        wf(Step.wait("pause", 60)), run_id="r"
    )
    assert result.category is ErrorCategory.CANCELLED and len(slept) == 2


def test_wait_needs_exactly_one_of_duration_or_until():
    from spine_core.errors import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError):
        Step.wait("w")
    with pytest.raises(WorkflowDefinitionError):
        Step.wait("w", 1, until=utcnow())


# ---- sub-workflows ------------------------------------------------------------------------------


SUB = Workflow(
    "sub",
    (
        Step.lambda_("one", lambda ctx: ctx.params.get("x", 0) + 1),
        Step.lambda_("two", lambda ctx: ctx.output("one") * 2),
    ),
)


def test_sub_workflow_by_object(make_engine):
    result = make_engine().run(wf(Step.workflow("child", SUB)), {"x": 4}, run_id="r")
    assert result.succeeded
    assert result.context.output("child") == {"one": 5, "two": 10}


def test_sub_workflow_by_registered_name_with_params(registry, make_engine):
    registry.add(SUB)
    workflow = wf(
        Step.lambda_("seed", lambda ctx: 9),
        Step.workflow("child", "sub", lambda ctx: {"x": ctx.output("seed")}),
    )
    result = make_engine().run(workflow, run_id="r")
    assert result.context.output("child") == {"one": 10, "two": 20}


def test_sub_workflow_failure_fails_the_step(make_engine):
    bad = Workflow("bad", (Step.lambda_("x", lambda ctx: StepResult.fail("inner broke")),))
    result = make_engine().run(wf(Step.workflow("child", bad)), run_id="r")
    assert not result.succeeded and "inner broke" in result.error


def test_unknown_named_sub_workflow_fails_before_any_step(make_engine):
    ran = []
    workflow = wf(Step.lambda_("a", lambda ctx: ran.append(1)), Step.workflow("c", "nope"))
    with pytest.raises(UnknownPipeline, match="nope"):
        make_engine().run(workflow, run_id="r")
    assert ran == []


# ---- capabilities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "label", "distribution", "tier"),
    [
        (
            Step.choice("c", lambda ctx: True, Step.lambda_("t", lambda c: 1)),
            "Step.choice",
            "market-spine-intermediate",
            "market-spine-basic",
        ),
        (
            Step.map("m", [1], Step.lambda_("b", lambda c: 1)),
            "Step.map",
            "market-spine-advanced",
            "market-spine-intermediate",
        ),
        (Step.wait("w", 1), "Step.wait", "market-spine-advanced", "market-spine-basic"),
        (Step.workflow("s", SUB), "Step.workflow", "market-spine-full", "market-spine-advanced"),
    ],
    ids=["choice", "map", "wait", "workflow"],
)
def test_missing_capability_names_the_distribution_before_anything_runs(
    make_engine, step, label, distribution, tier
):
    ran = []
    workflow = wf(Step.lambda_("first", lambda ctx: ran.append(1)), step)
    engine = make_engine(capabilities=capabilities_up_to(tier), tier=tier)
    with pytest.raises(MissingCapability) as info:
        engine.run(workflow, run_id="r")
    assert f"{label} needs {distribution}" in str(info.value)
    assert f"pip install --find-links dist {distribution}" in str(info.value)
    assert info.value.distribution == distribution
    assert ran == []


def test_nested_step_kinds_need_their_capability(make_engine):
    inner = Workflow("inner", (Step.map("m", [1], Step.lambda_("b", lambda c: 1)),))
    caps = FULL - {Capability.MAP_STEP}
    with pytest.raises(MissingCapability, match=r"Step\.map needs market-spine-advanced"):
        make_engine(capabilities=caps).run(wf(Step.workflow("s", inner)), run_id="r")


def test_named_sub_workflow_kinds_are_checked_up_front(registry, make_engine):
    registry.add(Workflow("inner", (Step.wait("w", 1),)))
    ran = []
    workflow = wf(Step.lambda_("first", lambda ctx: ran.append(1)), Step.workflow("s", "inner"))
    caps = FULL - {Capability.WAIT_STEP}
    with pytest.raises(MissingCapability, match=r"Step\.wait needs market-spine-advanced"):
        make_engine(capabilities=caps).run(workflow, run_id="r")
    assert ran == []


def test_workflow_reports_required_capabilities():
    workflow = wf(Step.choice("c", lambda ctx: True, Step.wait("w", 1)))
    assert workflow.kinds() == {StepKind.CHOICE, StepKind.WAIT}
    assert workflow.required_capabilities() == {Capability.CHOICE_STEP, Capability.WAIT_STEP}


# ---- quality gates ------------------------------------------------------------------------------


def gated(q: QualityMetrics | None, *gates: Gate, status_ok: bool = True) -> Workflow:
    def fn(ctx):
        if status_ok:
            return StepResult.ok({"rows": q.record_count if q else 0}, quality=q)
        return StepResult.fail("pipeline broke", quality=q)

    return wf(Step.lambda_("load", fn, gates=gates), Step.lambda_("after", lambda ctx: 1))


def test_min_gate_failure_is_data_quality_and_explains_itself(make_engine):
    result = make_engine().run(gated(quality(98, 100), Gate.min("valid_rate", 0.99)), run_id="r")
    assert not result.succeeded
    assert result.category is ErrorCategory.DATA_QUALITY
    assert "min valid_rate" in result.error
    assert "0.98" in result.error and "0.99" in result.error
    (gate,) = result.step_runs[0].result.gates
    assert (gate.gate, gate.passed, gate.observed, gate.threshold) == (
        "min valid_rate",
        False,
        0.98,
        0.99,
    )
    assert result.step_runs[0].result.quality == quality(98, 100)
    assert "after" not in result.context.outputs


def test_passing_gates_are_recorded(make_engine):
    result = make_engine().run(
        gated(quality(100, 100), Gate.min("valid_rate", 0.99), Gate.max("reject_rate", 0.01)),
        run_id="r",
    )
    assert result.succeeded
    assert [g.passed for g in result.step_runs[0].result.gates] == [True, True]
    assert result.step_runs[0].to_dict()["gates"][0]["gate"] == "min valid_rate"


def test_max_gate(make_engine):
    result = make_engine().run(gated(quality(90, 100), Gate.max("reject_rate", 0.05)), run_id="r")
    assert result.category is ErrorCategory.DATA_QUALITY
    assert "max reject_rate" in result.error and "0.1" in result.error and "0.05" in result.error


@pytest.mark.parametrize(
    ("op", "threshold", "passes"),
    [(">", 0, False), (">=", 0, True), ("==", 0, True), ("<", 1, True), ("<=", -1, False)],
)
def test_compare_gate(make_engine, op, threshold, passes):
    result = make_engine().run(
        gated(QualityMetrics(), Gate.compare("record_count", op, threshold)), run_id="r"
    )
    assert result.succeeded is passes
    if not passes:
        assert f"record_count {op}" in result.error and "observed record_count=0" in result.error


def test_compare_gate_rejects_unknown_operator():
    with pytest.raises(ValueError, match="!="):
        Gate.compare("record_count", "!=", 0)


def test_param_ref_threshold_comes_from_run_params(make_engine):
    gate = Gate.min("valid_rate", param("min_valid_rate", 0.99))
    engine = make_engine()
    assert not engine.run(gated(quality(95, 100), gate), run_id="r").succeeded
    loosened = engine.run(gated(quality(95, 100), gate), {"min_valid_rate": 0.9}, run_id="r")
    assert loosened.succeeded
    assert loosened.step_runs[0].result.gates[0].threshold == 0.9


def test_custom_predicate_gate(make_engine):
    gate = Gate.check("has trades", lambda q: q.value("trades") > 0, metric="trades")
    ok = make_engine().run(gated(quality(1, 1, trades=3), gate), run_id="r")
    assert ok.succeeded
    bad = make_engine().run(gated(quality(1, 1, trades=0), gate), run_id="r")
    assert bad.category is ErrorCategory.DATA_QUALITY
    assert "has trades" in bad.error and "trades=0" in bad.error


def test_warn_gate_is_recorded_but_does_not_fail(make_engine):
    result = make_engine().run(
        gated(quality(50, 100), Gate.min("valid_rate", 0.99, severity=Severity.WARN)), run_id="r"
    )
    assert result.succeeded
    (gate,) = result.step_runs[0].result.gates
    assert not gate.passed and gate.severity is Severity.WARN
    assert result.context.output("after") == 1


def test_missing_metric_fails_the_gate_and_names_it(make_engine):
    result = make_engine().run(gated(quality(1, 1), Gate.min("vwap_sanity", 1)), run_id="r")
    assert result.category is ErrorCategory.DATA_QUALITY
    assert "min vwap_sanity" in result.error and "vwap_sanity" in result.error
    assert result.step_runs[0].result.gates[0].observed is None


def test_gated_step_without_metrics_fails_as_data_quality(make_engine):
    result = make_engine().run(gated(None, Gate.min("valid_rate", 0.9)), run_id="r")
    assert result.category is ErrorCategory.DATA_QUALITY
    assert "no quality metrics" in result.error


def test_failed_gated_step_keeps_its_own_error(make_engine):
    result = make_engine().run(
        gated(None, Gate.min("valid_rate", 0.9), status_ok=False), run_id="r"
    )
    assert result.category is ErrorCategory.USER_CODE
    assert "pipeline broke" in result.error


def test_pipeline_can_evaluate_its_gates_itself(registry, make_engine):
    seen = []

    @registry.pipeline("p")
    def p(params, ctx: PipelineContext) -> StepResult:
        q = quality(9, 10)
        seen.extend(ctx.evaluate_gates(q))
        return StepResult.ok(None, quality=q)

    gate = Gate.min("valid_rate", param("floor", 0.95))
    make_engine().run(wf(Step.pipeline("p", "p", gates=[gate])), {"floor": 0.5}, run_id="r")
    assert [(g.passed, g.threshold) for g in seen] == [(True, 0.5)]


def test_quality_metrics_round_trip():
    q = QualityMetrics(10, 7, 3, custom={"hhi": 2500.0}, failure_reasons={"BAD_SYMBOL": 3})
    assert QualityMetrics.from_dict(q.to_dict()) == q
    assert q.value("reject_rate") == pytest.approx(0.3)
    assert QualityMetrics().valid_rate == 1.0 and QualityMetrics().invalid_rate == 0.0


# ---- observers -----------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.calls = []

    def run_started(self, run_id, workflow, context):
        self.calls.append(("run_started", run_id, workflow.name))

    def step_started(self, run_id, path, kind):
        self.calls.append(("step_started", path, kind.value))

    def step_finished(self, run_id, step_run, context):
        self.calls.append(("step_finished", step_run.path, step_run.status.value))

    def run_finished(self, result):
        self.calls.append(("run_finished", result.run_id, result.succeeded))


def test_observers_hear_every_step_in_order(make_engine):
    rec = Recorder()
    make_engine(observers=(rec,)).run(
        wf(Step.lambda_("a", lambda c: 1), Step.lambda_("b", lambda c: 2)), run_id="r"
    )
    assert rec.calls == [
        ("run_started", "r", "wf"),
        ("step_started", "a", "lambda"),
        ("step_finished", "a", "ok"),
        ("step_started", "b", "lambda"),
        ("step_finished", "b", "ok"),
        ("run_finished", "r", True),
    ]


def test_workflow_definition_errors():
    from spine_core.errors import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError, match="no steps"):
        Workflow("empty", ())
    with pytest.raises(WorkflowDefinitionError, match="two steps named 'a'"):
        Workflow("dup", (Step.lambda_("a", lambda c: 1), Step.lambda_("a", lambda c: 2)))
