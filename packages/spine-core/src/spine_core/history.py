"""Writes run history as the engine runs, for tiers whose store keeps it."""

from __future__ import annotations

from spine_core.context import WorkflowContext, thaw
from spine_core.engine import StepRun, WorkflowRunResult
from spine_core.errors import ErrorCategory
from spine_core.ports import RunHistoryStore, StepRunRecord
from spine_core.workflow import StepKind, Workflow


class HistoryObserver:
    """A `RunObserver` that records each run and step in a `RunHistoryStore`."""

    def __init__(self, store: RunHistoryStore, execution_id: str | None) -> None:
        self.store = store
        self.execution_id = execution_id
        self._runs: dict[str, tuple[str, int]] = {}

    def run_started(self, run_id: str, workflow: Workflow, context: WorkflowContext) -> None:
        """Record the run row."""
        self._runs[run_id] = (workflow.name, workflow.version)
        self.store.record_run_started(
            run_id, self.execution_id, workflow.name, workflow.version, thaw(context.params)
        )

    def step_started(self, run_id: str, path: str, kind: StepKind) -> None:
        """Steps are recorded when they finish, with their timing."""

    def step_finished(self, run_id: str, step_run: StepRun, context: WorkflowContext) -> None:
        """Record one step row."""
        workflow, version = self._runs[run_id]
        result = step_run.result
        self.store.record_step(
            StepRunRecord(
                run_id=run_id,
                execution_id=self.execution_id,
                workflow=workflow,
                version=version,
                step=step_run.path,
                kind=step_run.kind.value,
                status=result.status.value,
                started_at=step_run.started_at,
                finished_at=step_run.finished_at,
                duration_ms=step_run.duration_ms,
                error=result.error,
                category=result.category.value if result.category else None,
                detail={
                    "quality": result.quality.to_dict() if result.quality else None,
                    "gates": [g.to_dict() for g in result.gates],
                    "output": result.output if step_run.status.value == "ok" else None,
                },
            )
        )

    def run_finished(self, result: WorkflowRunResult) -> None:
        """Close the run row."""
        if result.succeeded:
            status = "completed"
        elif result.category is ErrorCategory.CANCELLED:
            status = "cancelled"
        else:
            status = "failed"
        self.store.record_run_finished(result.run_id, status, result.error)
