"""The backend interface, and the inline backend that runs work in the caller's thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from spine_core.execution import Execution
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus


@dataclass(frozen=True)
class BackendHealth:
    """Whether a backend can take work, and why not."""

    healthy: bool
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Where persisted executions run: inline, a thread pool, Celery, a plugin."""

    name: str
    creates_as: ExecutionStatus
    """The status the dispatcher creates this backend's executions in: `pending` for a backend
    that takes them from there itself, `queued` for one whose workers claim from the ledger
    (the row and both events are then one write instead of two)."""

    def submit(self, execution_id: str) -> Execution | None:
        """Take a persisted execution, in `creates_as` status; run it now or queue it.

        Returns the row as this backend's last ledger write left it, or None if the backend
        wrote nothing (the row as created stands); the dispatcher returns that to its caller.
        """

    def cancel(self, execution_id: str) -> None:
        """Ask a running execution to stop; the ledger already says `cancelling`."""

    def health(self) -> BackendHealth:
        """Can this backend take work now."""

    def start(self) -> None:
        """Begin taking work (start threads, connect to the broker)."""

    def stop(self) -> None:
        """Stop taking work; in-flight work finishes or goes back to queued."""


class InlineBackend:
    """Runs each execution synchronously in the submitting thread: the caller waits."""

    name = "inline"
    creates_as = ExecutionStatus.PENDING

    def __init__(self, runner: ExecutionRunner) -> None:
        self.runner = runner

    def submit(self, execution_id: str) -> Execution:
        """Run now; returns the final row once the execution has completed or failed."""
        return self.runner.advance(execution_id)

    def cancel(self, execution_id: str) -> None:
        """Inline runs check the ledger between steps, so nothing else is needed."""

    def health(self) -> BackendHealth:
        """Always able to run: it borrows the caller's thread."""
        return BackendHealth(True, "runs in the calling thread")

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""
