"""Advances one persisted execution, a step at a time, checkpointing each step in the ledger.

`advance(execution_id)` is the one unit of work every backend runs (a LocalBackend thread, the
inline backend, a Celery task later): it picks up where the last checkpoint left off, so a
worker that dies costs at most the step it was in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from spine_core.capabilities import Capability
from spine_core.context import WorkflowContext, thaw
from spine_core.dead_letters import RETRIES_EXHAUSTED, DeadLetterStore
from spine_core.durable.children import AwaitChildren
from spine_core.durable.local import LocalCheckpointStore
from spine_core.durable.spawn import ChildSteps
from spine_core.durable.state import Checkpoint, CheckpointRejected, RunState, StatusMove
from spine_core.engine import (
    RunObserver,
    StepOutcome,
    WorkflowEngine,
    WorkflowRunResult,
    cancelled_before,
    retry_policy,
    wait_until,
)
from spine_core.errors import (
    ErrorCategory,
    IllegalTransition,
    StorageErrorTypes,
    UnknownPipeline,
    storage_failure,
    unknown_here,
)
from spine_core.events import EventType
from spine_core.execution import Execution, TriggerSource, utcnow
from spine_core.log_context import log_context, set_log_field
from spine_core.ports import CheckpointStore, FanOutStore, LedgerStore
from spine_core.registry import Registry
from spine_core.resources import Resources
from spine_core.status import ExecutionStatus, is_terminal
from spine_core.workflow import StepKind, Workflow

log = logging.getLogger(__name__)

ObserverFactory = Callable[[Execution], Sequence[RunObserver]]


def default_checkpoints(store: LedgerStore) -> CheckpointStore:
    """The store itself when it keeps run state, else run state kept in this process."""
    return store if isinstance(store, CheckpointStore) else LocalCheckpointStore(store)


@dataclass
class ExecutionRunner:
    """Turns an execution id into progress in the ledger: checkpoints, then a final status."""

    store: LedgerStore
    registry: Registry
    capabilities: frozenset[Capability]
    tier: str
    resources: Resources = field(default_factory=Resources)
    observers: ObserverFactory = lambda execution: ()
    checkpoints: CheckpointStore | None = None
    storage_errors: StorageErrorTypes = ()
    """The tier's driver exceptions, which users see by type only (see `storage_failure`)."""
    on_queued: Callable[[Execution], None] = lambda execution: None
    """Told of every execution this runner queued for someone else to run (a map's children,
    a parent its last child woke), with its `due_at`. A backend whose workers claim from the
    ledger needs nothing here; one that carries work in messages (Celery) sends one."""
    fanout: FanOutStore | None = None
    """Where map and sub-workflow steps run as child executions, each claimed by any worker.
    None runs them in this process: an inline backend has nobody else to run children."""
    dead_letters: DeadLetterStore | None = None
    """Where executions whose retries are used up go (failed -> dead_lettered); None: they
    stay failed."""
    dead_letter_all_failures: bool = False
    """With `dead_letters`: every final failure is dead-lettered, retried or not
    (`SPINE_DEAD_LETTER_ALL_FAILURES=1`)."""

    def __post_init__(self) -> None:
        if self.checkpoints is None:
            self.checkpoints = default_checkpoints(self.store)

    def advance(self, execution_id: str, *, claimed: Execution | None = None) -> Execution:
        """Run the execution's next steps until it ends; `claimed` is a row already running.

        Returns the row as the last write left it. A checkpoint the ledger refuses (the lease
        was lost, someone else holds it) stops this attempt without touching the row. Records
        logged meanwhile carry the execution, step, attempt and worker (`log_context`).
        """
        worker = claimed.worker_id if claimed is not None else None
        with log_context(execution_id=execution_id, worker=worker):
            return self._claim_and_advance(execution_id, claimed)

    def _claim_and_advance(self, execution_id: str, claimed: Execution | None) -> Execution:
        execution = claimed
        if execution is None:
            try:
                execution = self.store.transition(execution_id, ExecutionStatus.RUNNING)
            except IllegalTransition:
                current = self.store.get_execution(execution_id)
                log.warning(
                    "execution %s is %s; not running it", execution_id, current.status.value
                )
                return current
        row = self._advance(execution)
        if self.fanout is not None and row.trigger_source is TriggerSource.WORKFLOW:
            self._tell_parent(row)
        return row

    def _advance(self, execution: Execution) -> Execution:
        execution_id = execution.id
        try:
            assert self.checkpoints is not None
            state = self.checkpoints.load_run_state(execution_id)
            workflow = self.registry.resolve(
                execution.name, state.version if state is not None else None
            )
            engine = WorkflowEngine(
                registry=self.registry,
                capabilities=self.capabilities,
                tier=self.tier,
                resources=self.resources,
                observers=(*self.observers(execution), _StepLogField()),
                durable_waits=True,
                storage_errors=self.storage_errors,
            )
            engine.check(workflow)
            state = state or RunState(workflow.name, workflow.version)
        except UnknownPipeline as exc:
            log.error("execution %s: %s", execution_id, exc)
            return self._finish_failed(execution_id, unknown_here(exc), ErrorCategory.VALIDATION)
        except Exception as exc:
            log.exception("execution %s could not run", execution_id)
            if isinstance(exc, self.storage_errors):
                error, category = storage_failure(exc), ErrorCategory.INFRASTRUCTURE
            else:
                error, category = f"{type(exc).__name__}: {exc}", ErrorCategory.INTERNAL
            return self._finish_failed(execution_id, error, category)
        children = None
        if self.fanout is not None:
            children = ChildSteps(
                self.fanout, self.registry, workflow, execution, state, self.on_queued
            )
            engine.children = children
        try:
            return self._steps(engine, workflow, execution, state, children)
        except CheckpointRejected as exc:
            log.warning("%s; this worker stops advancing it", exc)
            engine._notify("run_paused", execution_id)
            return self.store.get_execution(execution_id)
        except AwaitChildren as waiting:
            engine._notify("run_paused", execution_id)
            if waiting.parent.status is ExecutionStatus.CANCELLING:
                ctx = WorkflowContext(workflow.name, execution_id, execution.params, state.outputs)
                return self._cancel(engine, workflow, waiting.parent, state, ctx)
            return waiting.parent

    def _tell_parent(self, child: Execution) -> None:
        """A child that ended may start a sibling or wake its parent; they get queued."""
        if not is_terminal(child.status) or self.fanout is None:
            return
        news = self.fanout.child_finished(child.id)
        for row in (*news.released, *([news.woken] if news.woken is not None else [])):
            self.on_queued(row)

    def _steps(
        self,
        engine: WorkflowEngine,
        workflow: Workflow,
        execution: Execution,
        state: RunState,
        children: ChildSteps | None,
    ) -> Execution:
        ctx = WorkflowContext(workflow.name, execution.id, execution.params, state.outputs)
        set_log_field("worker", execution.worker_id)
        set_log_field("attempt", state.attempt)
        engine._notify("run_started", execution.id, workflow, ctx)
        if execution.status is ExecutionStatus.CANCELLING:
            return self._cancel(engine, workflow, execution, state, ctx)
        if state.cursor >= len(workflow.steps):
            # The run ended in a wait: nothing is left but to complete.
            return self.store.transition(
                execution.id, ExecutionStatus.COMPLETED, result=self._result_dict(workflow, state)
            )
        row = execution
        for outcome in engine.step_outcomes(workflow, ctx, execution.id, start=state.cursor):
            attempt = state.attempt
            state = self._state_after(state, outcome)
            if children is not None:
                children.state = state
            set_log_field("attempt", state.attempt)
            ctx = outcome.context
            finish = (
                self._retry(workflow, attempt, outcome)
                or self._wait(workflow, outcome)
                or self._finish(workflow, state, outcome)
            )
            # History first: whoever sees the row move on finds the history written.
            if finish is not None and finish.to is ExecutionStatus.QUEUED:
                engine._notify("run_paused", execution.id)
            elif finish is not None:
                engine._notify("run_finished", self._result(workflow, execution, state, outcome))
            row = self._save(execution, attempt, state, outcome, finish)
            if finish is not None:
                return self._settle(row, self._exhausted(workflow, attempt, outcome), attempt)
            if row.status is ExecutionStatus.CANCELLING:
                return self._cancel(engine, workflow, row, state, ctx)
        return row

    def _state_after(self, state: RunState, outcome: StepOutcome) -> RunState:
        steps = (*state.steps, *(s.to_dict() for s in outcome.step_runs))
        if outcome.error is not None:
            # A resume runs this step again, as its next attempt.
            return replace(state, steps=steps, attempt=state.attempt + 1, fanout=None)
        return replace(
            state,
            cursor=outcome.index + 1,
            outputs=thaw(outcome.context.outputs),
            steps=steps,
            attempt=1,
            fanout=None,
        )

    def _retry(self, workflow: Workflow, attempt: int, outcome: StepOutcome) -> StatusMove | None:
        """Back to queued, due after the backoff, if the step's policy retries this failure."""
        category = outcome.category
        if category is None:
            return None
        policy = retry_policy(workflow.steps[outcome.index], self.registry)
        if policy is None or not policy.retries(attempt, category):
            return None
        delay = policy.delay(attempt)
        return StatusMove(
            ExecutionStatus.QUEUED,
            due_at=utcnow() + timedelta(seconds=delay),
            payload={
                "reason": "retry",
                "attempt": attempt + 1,
                "step": outcome.step_run.path,
                "failed_attempt": attempt,
                "next_attempt": attempt + 1,
                "delay_seconds": round(delay, 3),
                "error": outcome.step_run.result.error,
            },
        )

    def _wait(self, workflow: Workflow, outcome: StepOutcome) -> StatusMove | None:
        """A wait still to come leaves the worker: queued, due when the wait is over."""
        step = workflow.steps[outcome.index]
        if step.kind is not StepKind.WAIT or outcome.error is not None:
            return None
        due = wait_until(step, outcome.step_run.started_at)
        if due <= utcnow():
            return None
        return StatusMove(
            ExecutionStatus.QUEUED,
            due_at=due,
            payload={"reason": "wait", "step": step.name, "until": due.isoformat()},
        )

    @staticmethod
    def _result_dict(workflow: Workflow, state: RunState) -> dict:
        return {
            "workflow": workflow.name,
            "version": state.version,
            "outputs": dict(state.outputs),
            "steps": list(state.steps),
        }

    def _finish(
        self, workflow: Workflow, state: RunState, outcome: StepOutcome
    ) -> StatusMove | None:
        result = self._result_dict(workflow, state)
        if outcome.error is not None:
            category = outcome.category or ErrorCategory.USER_CODE
            return StatusMove(ExecutionStatus.FAILED, outcome.error, category.value, result)
        if outcome.last:
            return StatusMove(ExecutionStatus.COMPLETED, result=result)
        return None

    def _save(
        self,
        execution: Execution,
        attempt: int,
        state: RunState,
        outcome: StepOutcome,
        finish: StatusMove | None,
    ) -> Execution:
        failed = outcome.error is not None
        payload = {
            "step": outcome.step_run.path,
            "index": outcome.index,
            "attempt": attempt,
            "status": outcome.step_run.status.value,
            "duration_ms": round(outcome.step_run.duration_ms, 3),
        }
        if failed:
            payload["error"] = outcome.step_run.result.error
        step = outcome.step_run
        leaves = finish is not None and finish.to is ExecutionStatus.QUEUED
        if step.kind is StepKind.WAIT and not failed and not leaves:
            payload["until_in_past"] = True  # nothing left to wait for: it went straight on
        if finish is not None:
            finish = replace(finish, payload={"attempt": attempt, **(finish.payload or {})})
        checkpoint = Checkpoint(
            state,
            EventType.STAGE_FAILED if failed else EventType.STAGE_COMPLETED,
            payload,
            execution.worker_id,
            finish,
        )
        assert self.checkpoints is not None
        try:
            return self.checkpoints.save_checkpoint(execution.id, checkpoint)
        except (TypeError, ValueError) as exc:
            # The step's output cannot be stored: it fails, earlier checkpoints stay.
            error = f"step {outcome.step_run.path!r} output cannot be checkpointed: {exc}"
            return self._finish_failed(
                execution.id, error, ErrorCategory.VALIDATION, attempt=attempt
            )

    def _exhausted(self, workflow: Workflow, attempt: int, outcome: StepOutcome) -> bool:
        """Whether the step failed on the last attempt its `RetryPolicy` allows."""
        policy = retry_policy(workflow.steps[outcome.index], self.registry)
        category = outcome.category
        return (
            policy is not None
            and category is not None
            and category not in policy.non_retryable
            and attempt >= policy.max_attempts
        )

    def _settle(self, row: Execution, exhausted: bool, attempts: int) -> Execution:
        """The one place a final failure is decided: it stays failed, or is dead-lettered."""
        if self.dead_letters is None or row.status is not ExecutionStatus.FAILED:
            return row
        if not exhausted and not self.dead_letter_all_failures:
            return row
        reason = RETRIES_EXHAUSTED if exhausted else f"failed ({row.error_category}), not retried"
        try:
            self.dead_letters.dead_letter(row.id, reason=reason, attempts=attempts)
        except IllegalTransition:
            log.warning("execution %s moved on before it could be dead-lettered", row.id)
        except Exception as exc:
            # The failure is written; it stays failed rather than being handed back to run again.
            log.error("execution %s stays failed: dead-lettering it failed: %s", row.id, exc)
            return row
        return self.store.get_execution(row.id)

    def _cancel(
        self,
        engine: WorkflowEngine,
        workflow: Workflow,
        row: Execution,
        state: RunState,
        ctx: WorkflowContext,
    ) -> Execution:
        error, category = cancelled_before(workflow.steps[state.cursor])
        engine._notify(
            "run_finished",
            WorkflowRunResult(row.id, workflow.name, state.version, ctx, (), error, category),
        )
        try:
            return self.store.transition(
                row.id,
                ExecutionStatus.CANCELLED,
                error=error,
                error_category=category.value,
                payload={"attempt": state.attempt},
                result={
                    "workflow": workflow.name,
                    "version": state.version,
                    "outputs": dict(state.outputs),
                    "steps": list(state.steps),
                },
            )
        except IllegalTransition:
            return self.store.get_execution(row.id)

    def _result(
        self, workflow: Workflow, execution: Execution, state: RunState, outcome: StepOutcome
    ) -> WorkflowRunResult:
        return WorkflowRunResult(
            execution.id,
            workflow.name,
            state.version,
            outcome.context,
            outcome.step_runs,
            outcome.error,
            outcome.category,
        )

    def _finish_failed(
        self,
        execution_id: str,
        error: str,
        category: ErrorCategory,
        result: dict | None = None,
        *,
        attempt: int = 1,
    ) -> Execution:
        try:
            row = self.store.transition(
                execution_id,
                ExecutionStatus.FAILED,
                error=error,
                error_category=category.value,
                result=result,
                payload={"attempt": attempt},
            )
        except IllegalTransition:
            return self.store.get_execution(execution_id)
        return self._settle(row, False, attempt)


class _StepLogField:
    """Sets the `step` log field as each step starts (a `RunObserver` that does nothing else)."""

    def run_started(self, run_id: str, workflow: Workflow, context: WorkflowContext) -> None:
        """Nothing to do."""

    def step_started(self, run_id: str, path: str, kind: StepKind) -> None:
        """Records from here on name this step."""
        set_log_field("step", path)

    def step_finished(self, run_id: str, step_run: object, context: WorkflowContext) -> None:
        """Nothing to do."""

    def run_finished(self, result: WorkflowRunResult) -> None:
        """Nothing to do."""
