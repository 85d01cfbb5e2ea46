"""The workflow engine: runs steps in order, passes the context, evaluates gates.

It is synchronous on purpose (see docs/architecture.md): user steps are plain functions, and
every tier calls it from a thread it owns (the CLI, a worker thread, a Celery task).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from spine_core.capabilities import INTRODUCED_BY, Capability
from spine_core.context import WorkflowContext, freeze, thaw
from spine_core.durable.children import AwaitChildren
from spine_core.errors import (
    ErrorCategory,
    InvalidParams,
    MissingCapability,
    StorageErrorTypes,
    storage_failure,
)
from spine_core.execution import utcnow
from spine_core.quality import failed_error_gates
from spine_core.registry import PipelineContext, Registry
from spine_core.resources import Resources
from spine_core.results import StepResult, StepStatus
from spine_core.retry import RetryPolicy
from spine_core.workflow import REQUIRED_CAPABILITY, Step, StepKind, Workflow

log = logging.getLogger(__name__)

_KIND_LABEL = {
    StepKind.LAMBDA: "Step.lambda_",
    StepKind.PIPELINE: "Step.pipeline",
    StepKind.CHOICE: "Step.choice",
    StepKind.MAP: "Step.map",
    StepKind.WAIT: "Step.wait",
    StepKind.WORKFLOW: "Step.workflow",
}


_KIND_ORDER = {kind: position for position, kind in enumerate(StepKind)}


def require_capabilities(
    workflow: Workflow,
    capabilities: frozenset[Capability],
    tier: str,
    registry: Registry | None = None,
) -> None:
    """Fail before anything runs if the tier lacks a step kind the workflow uses.

    With `registry`, sub-workflows named by string are resolved and checked too (an unknown
    name raises `UnknownPipeline` here rather than half-way through the run).
    """
    for wf in [workflow, *(named_sub_workflows(workflow, registry) if registry else [])]:
        for kind in sorted(wf.kinds(), key=_KIND_ORDER.__getitem__):
            needed = REQUIRED_CAPABILITY[kind]
            if needed not in capabilities:
                raise MissingCapability(_KIND_LABEL[kind], INTRODUCED_BY[needed], tier)
        if Capability.RETRY_POLICY not in capabilities and any(
            retry_policy(step, registry) for step in wf.steps
        ):
            raise MissingCapability("RetryPolicy", INTRODUCED_BY[Capability.RETRY_POLICY], tier)


def retry_policy(step: Step, registry: Registry | None) -> RetryPolicy | None:
    """The step's own policy, else the one its pipeline was registered with."""
    if step.retry is not None or step.kind is not StepKind.PIPELINE or registry is None:
        return step.retry
    assert step.pipeline_name is not None
    try:
        return registry.get_pipeline(step.pipeline_name).retry
    except Exception:
        return None  # an unknown pipeline is reported by the reference check


def named_sub_workflows(workflow: Workflow, registry: Registry) -> list[Workflow]:
    """Every workflow reached through `Step.workflow(name, "registered.name")`, transitively."""
    found: dict[str, Workflow] = {}

    def walk_step(step: Step) -> None:
        for child in (step.then_step, step.else_step):
            if child is not None:
                walk_step(child)
        if isinstance(step.body, Step):
            walk_step(step.body)
        elif isinstance(step.body, Workflow):
            walk_workflow(step.body)
        if isinstance(step.sub_workflow, Workflow):
            walk_workflow(step.sub_workflow)
        elif isinstance(step.sub_workflow, str) and step.sub_workflow not in found:
            sub = registry.get_workflow(step.sub_workflow)
            found[step.sub_workflow] = sub
            walk_workflow(sub)

    def walk_workflow(wf: Workflow) -> None:
        for step in wf.steps:
            walk_step(step)

    walk_workflow(workflow)
    return list(found.values())


@dataclass(frozen=True)
class StepRun:
    """One step's outcome and timing; `path` locates nested steps (`pick/then`, `each[2]`)."""

    path: str
    kind: StepKind
    result: StepResult
    started_at: datetime
    finished_at: datetime
    duration_ms: float

    @property
    def status(self) -> StepStatus:
        """ok, failed or skipped."""
        return self.result.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "step": self.path,
            "kind": self.kind.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class WorkflowRunResult:
    """The outcome of a whole run."""

    run_id: str
    workflow: str
    version: int
    context: WorkflowContext
    step_runs: tuple[StepRun, ...]
    error: str | None = None
    category: ErrorCategory | None = None

    @property
    def succeeded(self) -> bool:
        """True when no step failed."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """What the ledger stores as the execution's result."""
        return {
            "workflow": self.workflow,
            "version": self.version,
            "outputs": thaw(self.context.outputs),
            "steps": [s.to_dict() for s in self.step_runs],
        }


class RunObserver(Protocol):
    """Hears about a run as it goes: run history, checkpoints, stage events, metrics."""

    def run_started(self, run_id: str, workflow: Workflow, context: WorkflowContext) -> None:
        """A run begins (or resumes)."""

    def step_started(self, run_id: str, path: str, kind: StepKind) -> None:
        """A step begins."""

    def step_finished(self, run_id: str, step_run: StepRun, context: WorkflowContext) -> None:
        """A step ended; `context` already holds its output if it succeeded."""

    def run_finished(self, result: WorkflowRunResult) -> None:
        """The run ended."""

    def run_paused(self, run_id: str) -> None:
        """The run left its worker before its end; another advance continues it.

        A wait, a retry's backoff, its children or a lost lease. Optional: an observer without
        this method is skipped.
        """


@dataclass(frozen=True)
class StepOutcome:
    """One top-level step's end: its runs (nested ones included) and the context after it."""

    index: int
    last: bool
    step_run: StepRun
    step_runs: tuple[StepRun, ...]
    context: WorkflowContext

    @property
    def error(self) -> str | None:
        """The run's error if this step failed."""
        if self.step_run.status is not StepStatus.FAILED:
            return None
        return f"step {self.step_run.path!r} failed: {self.step_run.result.error}"

    @property
    def category(self) -> ErrorCategory | None:
        """Why it failed."""
        if self.step_run.status is not StepStatus.FAILED:
            return None
        return self.step_run.result.category or ErrorCategory.USER_CODE


def wait_until(step: Step, started_at: datetime) -> datetime:
    """When a wait step that started at `started_at` is over."""
    if step.duration is not None:
        return started_at + step.duration
    assert step.until is not None
    return step.until


def cancelled_before(step: Step) -> tuple[str, ErrorCategory]:
    """The error a run cancelled at a step boundary records."""
    return "cancelled before step " + repr(step.name), ErrorCategory.CANCELLED


@dataclass
class WorkflowEngine:
    """Runs workflows for one tier: its capabilities, its resources, its observers."""

    registry: Registry
    capabilities: frozenset[Capability]
    tier: str = "core"
    resources: Resources = field(default_factory=Resources)
    observers: tuple[RunObserver, ...] = ()
    cancel_requested: Callable[[], bool] = lambda: False
    sleep: Callable[[float], None] = time.sleep
    durable_waits: bool = False
    """True under the runner: a wait step returns at once and the runner queues the execution
    until its due time, so no thread sleeps; False sleeps here (in-process `run`)."""
    storage_errors: StorageErrorTypes = ()
    """The tier's driver exceptions: a step that raises one fails as INFRASTRUCTURE, with the
    driver's text in the log only."""
    children: Callable[[Step, WorkflowContext], StepResult] | None = None
    """Runs top-level map and sub-workflow steps as child executions (the runner's); it
    raises `AwaitChildren` while they run. None runs them here, in this process."""

    def check(self, workflow: Workflow) -> None:
        """Capabilities and pipeline references, before any step runs."""
        require_capabilities(workflow, self.capabilities, self.tier, self.registry)
        self.registry.check_references([workflow, *named_sub_workflows(workflow, self.registry)])

    def run(
        self, workflow: Workflow, params: Mapping[str, Any] | None = None, *, run_id: str
    ) -> WorkflowRunResult:
        """Run a workflow in this process with nothing persisted (tests, notebooks, scripts).

        The same step loop as a ledger execution (`step_outcomes`), without checkpoints.
        """
        self.check(workflow)
        ctx = WorkflowContext(workflow.name, run_id, params or {})
        self._notify("run_started", run_id, workflow, ctx)
        runs: list[StepRun] = []
        error: str | None = None
        category: ErrorCategory | None = None
        if self.cancel_requested():
            error, category = cancelled_before(workflow.steps[0])
        else:
            for outcome in self.step_outcomes(workflow, ctx, run_id):
                runs.extend(outcome.step_runs)
                ctx = outcome.context
                error, category = outcome.error, outcome.category
                if error is None and not outcome.last and self.cancel_requested():
                    error, category = cancelled_before(workflow.steps[outcome.index + 1])
                    break
        result = WorkflowRunResult(
            run_id, workflow.name, workflow.version, ctx, tuple(runs), error, category
        )
        self._notify("run_finished", result)
        return result

    def step_outcomes(
        self, workflow: Workflow, ctx: WorkflowContext, run_id: str, *, start: int = 0
    ) -> Iterator[StepOutcome]:
        """Run the top-level steps from `start`, one per iteration, until one fails.

        The only step loop: the caller decides between steps whether to go on (checkpoint,
        cancel, lease), which is what makes a run resumable at any step boundary.
        """
        last = len(workflow.steps) - 1
        for index in range(start, last + 1):
            step = workflow.steps[index]
            runs: list[StepRun] = []
            step_run, ctx = self._run_step(step, step.name, ctx, run_id, runs)
            outcome = StepOutcome(index, index == last, step_run, tuple(runs), ctx)
            yield outcome
            if outcome.error is not None:
                return

    def _notify(self, event: str, *args: Any) -> None:
        """Observers run on whatever thread runs the step; one that raises is only logged."""
        for observer in self.observers:
            hook = getattr(observer, event, None)
            if hook is None:
                continue  # an observer written before this event existed
            try:
                hook(*args)
            except Exception:
                log.exception("observer %r failed in %s; the run goes on", observer, event)

    def _run_step(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, runs: list[StepRun]
    ) -> tuple[StepRun, WorkflowContext]:
        self._notify("step_started", run_id, path, step.kind)
        started_at, t0 = utcnow(), time.perf_counter()
        try:
            result = self._execute(step, path, ctx, run_id, runs)
            result = self._apply_gates(step, result, ctx)
        except InvalidParams as exc:
            result = StepResult.fail(str(exc), ErrorCategory.VALIDATION)
        except AwaitChildren:
            raise
        except Exception as exc:
            log.exception("step %s raised", path)
            if isinstance(exc, self.storage_errors):
                result = StepResult.fail(storage_failure(exc), ErrorCategory.INFRASTRUCTURE)
            else:
                result = StepResult.fail(f"{type(exc).__name__}: {exc}", ErrorCategory.USER_CODE)
        step_run = StepRun(
            path, step.kind, result, started_at, utcnow(), (time.perf_counter() - t0) * 1000
        )
        if result.status is StepStatus.OK:
            try:
                ctx = ctx.with_output(step.name, result.output)
            except TypeError as exc:
                step_run = StepRun(
                    path,
                    step.kind,
                    StepResult.fail(str(exc), ErrorCategory.USER_CODE),
                    step_run.started_at,
                    step_run.finished_at,
                    step_run.duration_ms,
                )
        elif result.output is not None:
            try:
                freeze(result.output)
            except TypeError as exc:
                # The ledger stores results as JSON; an unstorable output must not stop the
                # failure itself from being recorded.
                step_run = replace(step_run, result=replace(result, output=f"(not stored: {exc})"))
        runs.append(step_run)
        self._notify("step_finished", run_id, step_run, ctx)
        return step_run, ctx

    def _apply_gates(self, step: Step, result: StepResult, ctx: WorkflowContext) -> StepResult:
        if not step.gates or result.status is StepStatus.SKIPPED:
            return result
        if result.status is StepStatus.FAILED and result.quality is None:
            return result  # keep the step's own error; there is nothing to gate
        if result.quality is None:
            return StepResult.fail(
                f"step {step.name!r} declares quality gates but reported no quality metrics",
                ErrorCategory.DATA_QUALITY,
            )
        outcomes = tuple(gate.evaluate(result.quality, ctx.params) for gate in step.gates)
        failed = failed_error_gates(list(outcomes))
        if failed and result.status is StepStatus.OK:
            message = "; ".join(g.message for g in failed)
            result = StepResult.fail(message, ErrorCategory.DATA_QUALITY, quality=result.quality)
        return result.with_gates(outcomes)

    def _execute(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, runs: list[StepRun]
    ) -> StepResult:
        handler = {
            StepKind.LAMBDA: self._lambda,
            StepKind.PIPELINE: self._pipeline,
            StepKind.CHOICE: self._choice,
            StepKind.MAP: self._map,
            StepKind.WAIT: self._wait,
            StepKind.WORKFLOW: self._sub_workflow,
        }[step.kind]
        return handler(step, path, ctx, run_id, runs)

    def _lambda(self, step: Step, path: str, ctx: WorkflowContext, *_: Any) -> StepResult:
        assert step.fn is not None
        value = step.fn(ctx)
        return value if isinstance(value, StepResult) else StepResult.ok(value)

    def _pipeline(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, _: Any
    ) -> StepResult:
        assert step.pipeline_name is not None
        defn = self.registry.get_pipeline(step.pipeline_name)
        if step.params is None:
            params = defn.validate(thaw(ctx.params), strict=False)
        else:
            raw = step.params(ctx) if callable(step.params) else step.params
            params = defn.validate(thaw(raw))
        pctx = PipelineContext(
            execution_id=run_id,
            pipeline=defn.name,
            resources=self.resources,
            gates=step.gates,
            run_params=thaw(ctx.params),
            logger=logging.getLogger(f"spine.pipeline.{defn.name}"),
        )
        value = defn.fn(params, pctx)
        return value if isinstance(value, StepResult) else StepResult.ok(value)

    def _choice(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, runs: list[StepRun]
    ) -> StepResult:
        assert step.condition is not None and step.then_step is not None
        taken = step.then_step if step.condition(ctx) else step.else_step
        if taken is None:
            return StepResult.skip("condition false and no else step")
        branch = "then" if taken is step.then_step else "else"
        inner, _ = self._run_step(taken, f"{path}/{branch}:{taken.name}", ctx, run_id, runs)
        if inner.status is StepStatus.FAILED:
            return StepResult.fail(
                inner.result.error or "branch failed",
                inner.result.category or ErrorCategory.USER_CODE,
            )
        return StepResult.ok({"branch": branch, "step": taken.name, "output": inner.result.output})

    def _map(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, runs: list[StepRun]
    ) -> StepResult:
        assert step.items is not None and step.body is not None
        if self.children is not None and path == step.name:
            return self.children(step, ctx)
        items = list(step.items(ctx) if callable(step.items) else step.items)
        body = step.body

        def one(index_item: tuple[int, Any]) -> StepResult:
            index, item = index_item
            item_ctx = ctx.with_params(item=item)
            item_path = f"{path}[{index}]"
            if isinstance(body, Workflow):
                sub = self.run(body, thaw(item_ctx.params), run_id=f"{run_id}:{item_path}")
                if not sub.succeeded:
                    return StepResult.fail(
                        sub.error or "sub-workflow failed", sub.category or ErrorCategory.USER_CODE
                    )
                return StepResult.ok(thaw(sub.context.outputs))
            item_runs: list[StepRun] = []
            inner, _ = self._run_step(body, item_path, item_ctx, run_id, item_runs)
            runs.extend(item_runs)
            return inner.result

        with ThreadPoolExecutor(max_workers=step.max_concurrency) as pool:
            results = list(pool.map(one, enumerate(items)))
        failures = [(i, r) for i, r in enumerate(results) if r.status is StepStatus.FAILED]
        if failures:
            index, first = failures[0]
            return StepResult.fail(
                f"{len(failures)} of {len(items)} items failed; item {index}: {first.error}",
                first.category or ErrorCategory.USER_CODE,
            )
        return StepResult.ok([r.output for r in results])

    def _wait(self, step: Step, *_: Any) -> StepResult:
        seconds = max(0.0, (wait_until(step, utcnow()) - utcnow()).total_seconds())
        if self.durable_waits:
            return StepResult.ok({"waited_seconds": round(seconds, 3)})
        # Count down by what was slept as well as by the clock, so an injected sleep (tests,
        # simulations) finishes at once instead of spinning until real time has passed.
        deadline = time.monotonic() + seconds
        left = seconds
        while left > 0:
            if self.cancel_requested():
                return StepResult.fail("cancelled while waiting", ErrorCategory.CANCELLED)
            chunk = min(left, 1.0)
            self.sleep(chunk)
            left = min(left - chunk, deadline - time.monotonic())
        return StepResult.ok({"waited_seconds": round(seconds, 3)})

    def _sub_workflow(
        self, step: Step, path: str, ctx: WorkflowContext, run_id: str, _: Any
    ) -> StepResult:
        assert step.sub_workflow is not None
        if self.children is not None and path == step.name:
            return self.children(step, ctx)
        sub = (
            self.registry.get_workflow(step.sub_workflow)
            if isinstance(step.sub_workflow, str)
            else step.sub_workflow
        )
        raw = step.params(ctx) if callable(step.params) else step.params
        params = thaw(raw) if raw is not None else thaw(ctx.params)
        result = self.run(sub, params, run_id=f"{run_id}:{path}")
        if not result.succeeded:
            return StepResult.fail(
                result.error or "sub-workflow failed", result.category or ErrorCategory.USER_CODE
            )
        return StepResult.ok(thaw(result.context.outputs))
