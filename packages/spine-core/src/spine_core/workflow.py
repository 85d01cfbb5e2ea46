"""Workflows and steps, as data. Each tier decides which step kinds it can execute."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from spine_core.capabilities import Capability
from spine_core.errors import WorkflowDefinitionError
from spine_core.quality import Gate
from spine_core.retry import RetryPolicy

if TYPE_CHECKING:
    from spine_core.context import WorkflowContext


class StepKind(StrEnum):
    """The six kinds of step."""

    LAMBDA = "lambda"
    PIPELINE = "pipeline"
    CHOICE = "choice"
    MAP = "map"
    WAIT = "wait"
    WORKFLOW = "workflow"


REQUIRED_CAPABILITY: dict[StepKind, Capability] = {
    StepKind.LAMBDA: Capability.LAMBDA_STEP,
    StepKind.PIPELINE: Capability.PIPELINE_STEP,
    StepKind.CHOICE: Capability.CHOICE_STEP,
    StepKind.MAP: Capability.MAP_STEP,
    StepKind.WAIT: Capability.WAIT_STEP,
    StepKind.WORKFLOW: Capability.SUBWORKFLOW_STEP,
}

ParamsSpec = Mapping[str, Any] | Callable[["WorkflowContext"], Mapping[str, Any]] | None
"""A pipeline step's params: fixed, or computed from the context when the step starts."""


@dataclass(frozen=True)
class Step:
    """One step of a workflow. Build it with the `Step.<kind>` constructors."""

    name: str
    kind: StepKind
    fn: Callable[..., Any] | None = None
    pipeline_name: str | None = None
    params: ParamsSpec = None
    condition: Callable[[WorkflowContext], bool] | None = None
    then_step: Step | None = None
    else_step: Step | None = None
    items: Sequence[Any] | Callable[[WorkflowContext], Iterable[Any]] | None = None
    body: Step | Workflow | None = None
    max_concurrency: int = 1
    on_failure: str = "fail"
    duration: timedelta | None = None
    until: datetime | None = None
    sub_workflow: Workflow | str | None = None
    gates: tuple[Gate, ...] = ()
    retry: RetryPolicy | None = None

    @classmethod
    def lambda_(
        cls,
        name: str,
        fn: Callable[[WorkflowContext], Any],
        *,
        gates: Iterable[Gate] = (),
        retry: RetryPolicy | None = None,
    ) -> Step:
        """Run a plain function of the context; a non-StepResult return is its output."""
        return cls(name, StepKind.LAMBDA, fn=fn, gates=tuple(gates), retry=retry)

    @classmethod
    def pipeline(
        cls,
        name: str,
        pipeline: str,
        params: ParamsSpec = None,
        *,
        gates: Iterable[Gate] = (),
        retry: RetryPolicy | None = None,
    ) -> Step:
        """Run a registered pipeline; `params` default to the workflow's own params.

        Without `retry`, the policy the pipeline was registered with applies (if any).
        """
        return cls(
            name,
            StepKind.PIPELINE,
            pipeline_name=pipeline,
            params=params,
            gates=tuple(gates),
            retry=retry,
        )

    @classmethod
    def choice(
        cls,
        name: str,
        condition: Callable[[WorkflowContext], bool],
        then_step: Step,
        else_step: Step | None = None,
    ) -> Step:
        """Run `then_step` when `condition(ctx)` holds, otherwise `else_step` (or nothing)."""
        return cls(
            name, StepKind.CHOICE, condition=condition, then_step=then_step, else_step=else_step
        )

    @classmethod
    def map(
        cls,
        name: str,
        items: Sequence[Any] | Callable[[WorkflowContext], Iterable[Any]],
        step_or_workflow: Step | Workflow,
        max_concurrency: int = 4,
        *,
        on_failure: str = "fail",
    ) -> Step:
        """Run the body once per item (param `item`); the output is the list of outputs.

        Where the tier runs maps durably, each item is a child execution, at most
        `max_concurrency` running at once. `on_failure="collect"` waits for every item and
        puts each failure (`{"error", "status", "execution_id"}`) in its item's place.
        """
        if max_concurrency < 1:
            raise WorkflowDefinitionError(f"step {name!r}: max_concurrency must be at least 1")
        if on_failure not in ("fail", "collect"):
            raise WorkflowDefinitionError(
                f"step {name!r}: on_failure must be 'fail' or 'collect', got {on_failure!r}"
            )
        return cls(
            name,
            StepKind.MAP,
            items=items,
            body=step_or_workflow,
            max_concurrency=max_concurrency,
            on_failure=on_failure,
        )

    @classmethod
    def wait(
        cls, name: str, duration: timedelta | float | None = None, *, until: datetime | None = None
    ) -> Step:
        """Pause for `duration` (seconds or timedelta) or until a moment."""
        if (duration is None) == (until is None):
            raise WorkflowDefinitionError(f"step {name!r}: give exactly one of duration or until")
        if isinstance(duration, int | float):
            duration = timedelta(seconds=duration)
        if duration is not None and duration < timedelta(0):
            raise WorkflowDefinitionError(
                f"step {name!r}: a wait cannot be negative, got {duration.total_seconds()} s"
            )
        if until is not None and until.tzinfo is None:
            raise WorkflowDefinitionError(f"step {name!r}: until must be timezone-aware")
        return cls(name, StepKind.WAIT, duration=duration, until=until)

    @classmethod
    def workflow(cls, name: str, sub_workflow: Workflow | str, params: ParamsSpec = None) -> Step:
        """Run another workflow (by object or registered name) as one step."""
        return cls(name, StepKind.WORKFLOW, sub_workflow=sub_workflow, params=params)

    def kinds(self) -> set[StepKind]:
        """The kind of this step and of every step nested in it."""
        found = {self.kind}
        for child in (self.then_step, self.else_step):
            if child is not None:
                found |= child.kinds()
        if isinstance(self.body, Step | Workflow):
            found |= self.body.kinds()
        if isinstance(self.sub_workflow, Workflow):
            found |= self.sub_workflow.kinds()
        return found

    def pipelines(self) -> set[str]:
        """Names of the registered pipelines this step (or a nested one) runs."""
        names = {self.pipeline_name} if self.pipeline_name else set()
        for child in (self.then_step, self.else_step):
            if child is not None:
                names |= child.pipelines()
        if isinstance(self.body, Step | Workflow):
            names |= self.body.pipelines()
        if isinstance(self.sub_workflow, Workflow):
            names |= self.sub_workflow.pipelines()
        return names


@dataclass(frozen=True)
class Workflow:
    """A named, versioned sequence of steps."""

    name: str
    steps: tuple[Step, ...]
    version: int = 1
    description: str = ""
    params_model: type | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise WorkflowDefinitionError(f"workflow {self.name!r} has no steps")
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise WorkflowDefinitionError(
                    f"workflow {self.name!r} has two steps named {step.name!r}"
                )
            seen.add(step.name)
        # Steps never change, so the checks every submission repeats are computed once.
        object.__setattr__(self, "_kinds", frozenset().union(*(s.kinds() for s in self.steps)))
        object.__setattr__(
            self, "_pipelines", frozenset().union(*(s.pipelines() for s in self.steps))
        )

    def kinds(self) -> set[StepKind]:
        """Every step kind used, nested ones included."""
        return set(self._kinds)  # type: ignore[attr-defined]

    def pipelines(self) -> set[str]:
        """Every registered pipeline this workflow runs."""
        return set(self._pipelines)  # type: ignore[attr-defined]

    def required_capabilities(self) -> set[Capability]:
        """What a tier must provide to run this workflow."""
        return {REQUIRED_CAPABILITY[kind] for kind in self.kinds()}
