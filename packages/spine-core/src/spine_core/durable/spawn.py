"""Runs a parent's map and sub-workflow steps as child executions, for `ExecutionRunner`.

The first time the step runs, it creates the children and lets the parent go (`AwaitChildren`):
the parent holds no worker and no thread while they run. Each time the parent is woken (its
last child ended, a child failed, or the recheck came due), the step counts its children and
either gathers their outputs in item order or waits again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from spine_core.context import WorkflowContext, thaw
from spine_core.durable.children import (
    RECHECK_SECONDS,
    AwaitChildren,
    ChildWait,
    FanOut,
    child_name,
    gather,
    map_items,
)
from spine_core.durable.state import RunState
from spine_core.errors import ErrorCategory, InvalidParams
from spine_core.execution import Execution, NewExecution, TriggerSource, utcnow
from spine_core.ports import FanOutStore
from spine_core.registry import Registry
from spine_core.results import StepResult, StepStatus
from spine_core.status import ExecutionStatus
from spine_core.workflow import Step, StepKind, Workflow

log = logging.getLogger(__name__)


@dataclass
class ChildSteps:
    """The engine's `children` hook for one advance of one parent execution."""

    store: FanOutStore
    registry: Registry
    workflow: Workflow
    parent: Execution
    state: RunState
    """The parent's state before the step; the runner keeps it current between steps."""
    on_queued: Callable[[Execution], None]

    def __call__(self, step: Step, ctx: WorkflowContext) -> StepResult:
        """The step's result once its children are done; raises `AwaitChildren` until then."""
        waiting = self.state.fanout
        if waiting is None or waiting.get("step") != step.name:
            return self._spawn(step, ctx)
        fanout = FanOut.from_dict(waiting)
        result = gather(step, fanout, self.store.list_children(self.parent.id))
        if result is None:
            raise self._wait(fanout)
        if result.status is StepStatus.FAILED:
            stopped = self.store.cancel_children(self.parent.id)
            if stopped:
                log.info("execution %s: %d children cancelled", self.parent.id, len(stopped))
        return result

    def _spawn(self, step: Step, ctx: WorkflowContext) -> StepResult:
        try:
            params = self._child_params(step, ctx)
        except (ValueError, InvalidParams) as exc:
            return StepResult.fail(str(exc), ErrorCategory.VALIDATION)
        if not params:
            return StepResult.ok([])
        name = child_name(self.workflow, step)
        children = [
            NewExecution(
                name=name,
                params=p,
                lane=self.parent.lane,
                trigger_source=TriggerSource.WORKFLOW,
                parent_execution_id=self.parent.id,
                backend=self.parent.backend,
                status=ExecutionStatus.PENDING,
            )
            for p in params
        ]
        max_active = step.max_concurrency if step.kind is StepKind.MAP else 1
        fanout = FanOut(step.name, len(children), max_active, step.on_failure, children[0].id)
        raise self._wait(fanout, children)

    def _child_params(self, step: Step, ctx: WorkflowContext) -> list[dict]:
        if step.kind is StepKind.MAP:
            assert step.items is not None
            raw = step.items(ctx) if callable(step.items) else step.items
            base = thaw(ctx.params)
            return [{**base, "item": item} for item in map_items(step, raw)]
        raw = step.params(ctx) if callable(step.params) else step.params
        params = thaw(raw) if raw is not None else thaw(ctx.params)
        return [self.registry.validate_params(child_name(self.workflow, step), params)]

    def _wait(self, fanout: FanOut, children: list[NewExecution] | None = None) -> AwaitChildren:
        """Hand the parent back to the queue, waiting for its children; the signal to raise."""
        wait = ChildWait(
            state=replace(self.state, fanout=fanout.to_dict()),
            worker_id=self.parent.worker_id,
            recheck_at=utcnow() + timedelta(seconds=RECHECK_SECONDS),
            children=children or (),
            release=fanout.max_active if children else 0,
            payload={
                "reason": "waiting for children",
                "step": fanout.step,
                "children": fanout.children,
            },
        )
        parent, released = self.store.await_children(self.parent.id, wait)
        for child in released:
            self.on_queued(child)
        return AwaitChildren(parent)
