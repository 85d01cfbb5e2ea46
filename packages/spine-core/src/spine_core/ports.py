"""The storage interfaces every tier implements, synchronous by design.

See docs/architecture.md for why: one engine, plain user functions, and callers that are all
threads (CLI, worker threads, Celery tasks, FastAPI's thread pool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from spine_core.durable.children import ChildNews, ChildWait
from spine_core.durable.state import Checkpoint, RunState
from spine_core.events import EventType, ExecutionEvent
from spine_core.execution import Execution, ExecutionFilter, Lane, NewExecution
from spine_core.status import ExecutionStatus


@runtime_checkable
class LedgerStore(Protocol):
    """The execution ledger: executions and their append-only events."""

    def create_execution(self, new: NewExecution) -> Execution:
        """Insert the execution in `new.status` with its events, in one transaction.

        Pending: one `created` event. Queued: `created` then `queued`, as if created and then
        moved to queued, so the event history is the same either way.
        """

    def get_execution(self, execution_id: str) -> Execution:
        """The execution, or `ExecutionNotFound`."""

    def list_executions(self, flt: ExecutionFilter) -> list[Execution]:
        """Newest first, filtered, at most `flt.limit`; `flt.before_id` pages."""

    def transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        *,
        error: str | None = None,
        error_category: str | None = None,
        result: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> Execution:
        """Change status and append its event atomically; `IllegalTransition` otherwise.

        The check runs against the row as locked in the transaction, so two callers racing
        for the same change cannot both succeed.
        """

    def append_event(
        self,
        execution_id: str,
        event_type: EventType,
        payload: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> ExecutionEvent:
        """Append a non-status event (stage events); a repeated `dedupe_key` returns the first."""

    def list_events(self, execution_id: str) -> list[ExecutionEvent]:
        """An execution's events in `seq` order."""

    def claim_next(
        self, worker_id: str, *, lanes: tuple[Lane, ...] | None = None
    ) -> Execution | None:
        """Atomically move the oldest queued execution to running for this worker."""

    def count_by_status(self) -> dict[str, int]:
        """How many executions are in each status."""

    def schema_version(self) -> int:
        """The applied schema version (0 for a store without migrations)."""

    def table_counts(self) -> dict[str, int]:
        """Row count per table this store keeps, for `spine status`."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class StepRunRecord:
    """One row of run history: a step run (or the run itself when `step` is None)."""

    run_id: str
    execution_id: str | None
    workflow: str
    version: int
    step: str | None
    kind: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    duration_ms: float | None = None
    error: str | None = None
    category: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunStarted:
    """A workflow run began: opens its run row (a re-run of the same id restarts it)."""

    run_id: str
    execution_id: str | None
    workflow: str
    version: int
    params: dict[str, Any]
    started_at: datetime


@dataclass(frozen=True)
class RunFinished:
    """A workflow run ended: closes its run row with the status and the duration."""

    run_id: str
    status: str
    error: str | None
    finished_at: datetime


HistoryEntry = RunStarted | StepRunRecord | RunFinished
"""One thing to write into run history; `StepRunRecord` is a step that finished."""


@runtime_checkable
class RunHistoryStore(Protocol):
    """Persisted workflow run history (intermediate tier and up)."""

    def record(self, entries: Sequence[HistoryEntry]) -> None:
        """Write the entries in order, in one transaction.

        Batched so that a short run costs one write, not one per step (see `HistoryObserver`).
        """

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[StepRunRecord]:
        """Run-level rows, newest first."""

    def get_run(self, run_id: str) -> list[StepRunRecord]:
        """The run row followed by its step rows in the order they finished."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Durable run state: what lets the next worker continue where the last one stopped."""

    def load_run_state(self, execution_id: str) -> RunState | None:
        """The execution's last checkpointed state; None before its first checkpoint."""

    def save_checkpoint(self, execution_id: str, checkpoint: Checkpoint) -> Execution:
        """Write the state, the step's event and `finish`'s status move in one transaction.

        Only while the execution is running or cancelling, and held by `checkpoint.worker_id`;
        otherwise `CheckpointRejected` and nothing is written. Returns the row as written, so
        a cancel request reaches the worker in the answer, without a read of its own.
        """


@runtime_checkable
class FanOutStore(Protocol):
    """Child executions and the parents waiting for them (map and sub-workflow steps).

    The children's statuses live only in the ledger, and a parent holds no worker while it
    waits: whoever ends a child decides, with `wake_decision`, whether to start a sibling or
    wake the parent.
    """

    def await_children(self, parent_id: str, wait: ChildWait) -> tuple[Execution, list[Execution]]:
        """Move the parent to waiting for its children, in one transaction.

        That is: the parent's run state; `wait.children` created pending; the parent moved to
        queued, due at `wait.recheck_at` (at once if its children already call for it, or a
        child woke it while it ran); and up to `wait.release` pending children queued, oldest
        first.

        Only by the worker holding the parent (`CheckpointRejected` otherwise). A parent whose
        cancel was requested is left cancelling, with nothing created. Returns the parent row
        and the children now queued.
        """

    def child_finished(self, child_id: str) -> ChildNews:
        """A child reached a terminal status: tell its parent, under the parent's lock.

        Starts pending siblings and wakes the parent (due now) as `wake_decision` says; does
        nothing if the child has no waiting parent.
        """

    def list_children(self, parent_id: str) -> list[Execution]:
        """Every child of the parent, in creation (item) order."""

    def cancel_children(self, parent_id: str) -> list[Execution]:
        """Pending and queued children to cancelled, running ones to cancelling; the rows moved."""
