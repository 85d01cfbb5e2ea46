"""The backend interface, and the inline backend that runs work in the caller's thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from spine_core.execution import Execution
from spine_core.runner import ExecutionRunner


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

    def submit(self, execution_id: str) -> Execution | None:
        """Take a persisted (pending) execution; run it now or queue it.

        May return the row as its own last ledger write left it (the dispatcher then returns
        that instead of reading the row again); None means "read it back".
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

    def __init__(self, runner: ExecutionRunner) -> None:
        self.runner = runner

    def submit(self, execution_id: str) -> Execution:
        """Run now; returns the final row once the execution has completed or failed."""
        return self.runner.run(execution_id)

    def cancel(self, execution_id: str) -> None:
        """Inline runs check the ledger between steps, so nothing else is needed."""

    def health(self) -> BackendHealth:
        """Always able to run: it borrows the caller's thread."""
        return BackendHealth(True, "runs in the calling thread")

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""
