"""Writes run history as the engine runs, for tiers whose store keeps it."""

from __future__ import annotations

import time

from spine_core.context import WorkflowContext, thaw
from spine_core.engine import StepRun, WorkflowRunResult
from spine_core.errors import ErrorCategory
from spine_core.execution import utcnow
from spine_core.ports import HistoryEntry, RunFinished, RunHistoryStore, RunStarted, StepRunRecord
from spine_core.workflow import StepKind, Workflow

FLUSH_SECONDS = 0.25
"""How stale a running workflow's history may get before a step start writes it."""


class HistoryObserver:
    """A `RunObserver` that records each run and step in a `RunHistoryStore`.

    Entries are buffered and written in one batch when the run finishes or leaves its worker,
    and while it runs when a step starts `FLUSH_SECONDS` after the last write. A one-step run
    (every pipeline run) therefore costs one write instead of three, a run of quick steps one
    write in all, and a multi-step workflow's history lags at most that long behind while it
    runs; the execution row and its events stay the live view of the run.
    """

    def __init__(self, store: RunHistoryStore, execution_id: str | None) -> None:
        self.store = store
        self.execution_id = execution_id
        self._runs: dict[str, tuple[str, int]] = {}
        self._pending: list[HistoryEntry] = []
        self._flushed_at = time.monotonic()

    def run_started(self, run_id: str, workflow: Workflow, context: WorkflowContext) -> None:
        """Open the run row."""
        self._runs[run_id] = (workflow.name, workflow.version)
        self._pending.append(
            RunStarted(
                run_id,
                self.execution_id,
                workflow.name,
                workflow.version,
                thaw(context.params),
                utcnow(),
            )
        )

    def step_started(self, run_id: str, path: str, kind: StepKind) -> None:
        """Write what earlier steps did, if the last write is `FLUSH_SECONDS` old.

        A long step thus shows the steps before it, while a run of quick steps costs one write
        at its end instead of one per step. A worker killed in between loses at most that much
        history; the ledger's stage events, written with each checkpoint, keep every step.
        """
        if time.monotonic() - self._flushed_at < FLUSH_SECONDS:
            return
        if any(isinstance(entry, StepRunRecord) for entry in self._pending):
            self._flush()

    def step_finished(self, run_id: str, step_run: StepRun, context: WorkflowContext) -> None:
        """Add one step row."""
        workflow, version = self._runs[run_id]
        result = step_run.result
        self._pending.append(
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
        """Close the run row and write everything still buffered."""
        if result.succeeded:
            status = "completed"
        elif result.category is ErrorCategory.CANCELLED:
            status = "cancelled"
        else:
            status = "failed"
        self._pending.append(RunFinished(result.run_id, status, result.error, utcnow()))
        self._flush()

    def run_paused(self, run_id: str) -> None:
        """The run leaves its worker (a wait, a retry, its children): write what is buffered."""
        if self._pending:
            self._flush()

    def _flush(self) -> None:
        entries, self._pending = self._pending, []
        self._flushed_at = time.monotonic()
        self.store.record(entries)
