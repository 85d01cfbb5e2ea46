"""Child executions: how a map's items and a sub-workflow become executions of their own.

A child is an ordinary execution, claimed by any worker and retried, cancelled and listed like
any other. What it runs must be found from its row alone, on any machine, so its name says
where its body lives: `parent.workflow@version/step` is the body of that top-level step of that
version of the parent's workflow (a sub-workflow given by registered name runs under that name).
The version in the name pins the child to the definition its parent started with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spine_core.durable.state import RunState
from spine_core.errors import ErrorCategory
from spine_core.execution import Execution, NewExecution
from spine_core.results import StepResult
from spine_core.status import ExecutionStatus
from spine_core.workflow import Step, StepKind, Workflow

if TYPE_CHECKING:
    from spine_core.registry import Registry

_CHILD_NAME = re.compile(r"^(?P<workflow>.+)@(?P<version>\d+)/(?P<step>[^/]+)$")


def child_name(workflow: Workflow, step: Step) -> str:
    """The execution name of a child of `step`, a top-level step of `workflow`."""
    if step.kind is StepKind.WORKFLOW and isinstance(step.sub_workflow, str):
        return step.sub_workflow
    return f"{workflow.name}@{workflow.version}/{step.name}"


def resolve_child(registry: Registry, name: str) -> Workflow | None:
    """The workflow a child name runs, or None if `name` is not a child name."""
    match = _CHILD_NAME.match(name)
    if match is None:
        return None
    parent = registry.get_workflow(match["workflow"], int(match["version"]))
    step = next((s for s in parent.steps if s.name == match["step"]), None)
    if step is None or step.kind not in (StepKind.MAP, StepKind.WORKFLOW):
        return None
    body = step.body if step.kind is StepKind.MAP else step.sub_workflow
    if isinstance(body, Workflow):
        return body
    assert isinstance(body, Step)
    return Workflow(name, (body,), version=parent.version)


RECHECK_SECONDS = 30.0
"""How long a waiting parent sleeps before it counts its children itself. Its last child wakes
it at once; this bounds the wait if that wake-up is ever lost."""


class AwaitChildren(Exception):
    """Raised out of a step that now waits for its children: the worker lets the parent go."""

    def __init__(self, parent: Execution) -> None:
        super().__init__(f"execution {parent.id} waits for its children")
        self.parent = parent


@dataclass(frozen=True)
class ChildWait:
    """A parent's move to waiting: its state, new children, and how many to start now."""

    state: RunState
    worker_id: str | None
    recheck_at: datetime
    children: Sequence[NewExecution] = ()
    release: int = 0
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildNews:
    """What a child's end set moving: the parent, if it was woken, and siblings now queued."""

    woken: Execution | None = None
    released: Sequence[Execution] = ()


def wake_decision(counts: Mapping[str, int], fanout: FanOut) -> tuple[bool, int]:
    """(wake the parent now, how many pending children to start), from children by status.

    Every store decides with this, under the parent's lock, so that siblings ending at the same
    moment neither both start the last free slot nor both miss waking the parent.
    """

    def count(*statuses: ExecutionStatus) -> int:
        return sum(counts.get(s.value, 0) for s in statuses)

    pending = count(ExecutionStatus.PENDING)
    active = count(*_ACTIVE)
    if fanout.on_failure == "fail" and count(*_UNSUCCESSFUL):
        return True, 0
    if pending == 0 and active == 0:
        return True, 0
    return False, max(0, min(pending, fanout.max_active - active))


@dataclass(frozen=True)
class FanOut:
    """What a parent waiting on its children keeps in its run state.

    `first_child` is the id of the first child of this round: a map step that runs again (a
    resumed parent) makes new children, and the earlier round's, still linked to the parent,
    count no more (ids sort by creation).
    """

    step: str
    children: int
    max_active: int
    on_failure: str = "fail"
    first_child: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as run state keeps it."""
        return {
            "step": self.step,
            "children": self.children,
            "max_active": self.max_active,
            "on_failure": self.on_failure,
            "first_child": self.first_child,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FanOut:
        """Rebuild what `to_dict` wrote."""
        return cls(
            str(data["step"]),
            int(data["children"]),
            int(data["max_active"]),
            str(data.get("on_failure", "fail")),
            str(data.get("first_child", "")),
        )

    def of_this_round(self, children: Iterable[Execution]) -> list[Execution]:
        """The children this fan-out made, oldest first (not an earlier round's)."""
        return sorted((c for c in children if c.id >= self.first_child), key=lambda c: c.id)


def map_items(step: Step, context_items: Iterable[Any] | Any) -> list[Any]:
    """The map's items as a list of JSON values; `ValueError` naming the first bad one."""
    try:
        items = list(context_items)
    except TypeError:
        raise ValueError(
            f"map step {step.name!r}: items must be iterable, got {type(context_items).__name__}"
        ) from None
    for index, item in enumerate(items):
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"map step {step.name!r}: item {index} ({item!r:.60}) is not JSON: {exc}"
            ) from None
    return items


def child_output(step: Step, child: Execution) -> Any:
    """What a finished child contributes to its parent's step output."""
    outputs = dict((child.result or {}).get("outputs", {}))
    body = step.body if step.kind is StepKind.MAP else step.sub_workflow
    if isinstance(body, Step):
        return outputs.get(body.name)
    return outputs


def _failure(step: Step, fanout: FanOut, failed: list[tuple[int, Execution]]) -> str:
    index, child = failed[0]
    what = f"execution {child.id} {child.status.value}: {child.error or 'no error recorded'}"
    if step.kind is StepKind.WORKFLOW:
        return f"sub-workflow {child.name!r} ({what})"
    return f"{len(failed)} of {fanout.children} items failed; item {index} ({what})"


def gather(step: Step, fanout: FanOut, children: Sequence[Execution]) -> StepResult | None:
    """The step's result once its children allow one, else None (keep waiting).

    Outputs come in item order (children are created in that order, and ids sort by it). A
    failed child fails the step at once unless the map collects failures.
    """
    children = fanout.of_this_round(children)
    done = [c for c in children if c.status in _FINISHED]
    failed = [(i, c) for i, c in enumerate(children) if c.status in _UNSUCCESSFUL]
    if failed and fanout.on_failure == "fail":
        category = failed[0][1].error_category or ErrorCategory.USER_CODE.value
        return StepResult.fail(_failure(step, fanout, failed), ErrorCategory(category))
    if len(done) < fanout.children:
        return None
    if step.kind is StepKind.WORKFLOW:
        return StepResult.ok(child_output(step, children[0]))
    return StepResult.ok(
        [
            child_output(step, c)
            if c.status is ExecutionStatus.COMPLETED
            else {"error": c.error, "status": c.status.value, "execution_id": c.id}
            for c in children
        ]
    )


_UNSUCCESSFUL = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.DEAD_LETTERED, ExecutionStatus.CANCELLED}
)
_FINISHED = _UNSUCCESSFUL | {ExecutionStatus.COMPLETED}
_ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)
