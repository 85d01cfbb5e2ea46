"""Dead letters: executions that will not succeed by themselves, kept for a person to act on.

An execution whose retries are used up (or, if so configured, any final failure) moves
failed -> dead_lettered and gets a `DeadLetter` record, in one transaction. From there a person
retries it (a new execution whose parent is the dead one) or discards it; either closes the
record. A retry holds the record while it submits, so concurrent retries of one dead letter
make exactly one new execution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from spine_core.errors import SpineError
from spine_core.execution import Execution

if TYPE_CHECKING:  # the runner imports this module, and the dispatcher imports the runner
    from spine_core.dispatcher import Dispatcher

RETRIES_EXHAUSTED = "retries exhausted"
"""The reason recorded when the step's `RetryPolicy` has no attempt left."""

DEAD_LETTER_ALL_FAILURES_OPTION = "dead_letter_all_failures"
"""`SPINE_DEAD_LETTER_ALL_FAILURES=1`: also dead-letter failures that are not retried."""


class DeadLetterNotFound(SpineError):
    """No dead letter has the given id."""

    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter with id {dead_letter_id!r}")
        self.dead_letter_id = dead_letter_id


class DeadLetterClosed(SpineError):
    """The dead letter was already retried or discarded; names what happened to it."""

    def __init__(self, letter: DeadLetter) -> None:
        if letter.retried_as is not None:
            what = f"was already retried as execution {letter.retried_as}"
        else:
            what = "was discarded"
        super().__init__(f"dead letter {letter.id} {what}")
        self.letter = letter


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered execution: why, its last error, and what was done about it."""

    id: str
    execution_id: str
    reason: str
    error: str | None
    error_category: str | None
    attempts: int
    created_at: datetime
    retried_as: str | None = None
    """The execution that retried it, once retried."""
    discarded_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Neither retried nor discarded yet."""
        return self.retried_as is None and self.discarded_at is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, the same shape the CLI and the API print."""
        return {
            "id": self.id,
            "execution_id": self.execution_id,
            "reason": self.reason,
            "error": self.error,
            "error_category": self.error_category,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "retried_as": self.retried_as,
            "discarded_at": self.discarded_at.isoformat() if self.discarded_at else None,
        }


@runtime_checkable
class DeadLetterStore(Protocol):
    """Where dead letters are kept, beside the ledger whose executions they name."""

    def dead_letter(self, execution_id: str, *, reason: str, attempts: int) -> DeadLetter:
        """Move a failed execution to dead_lettered and record it, in one transaction.

        The record copies the execution's error and category. `IllegalTransition` (and nothing
        written) unless the execution is failed; `ExecutionNotFound` for an unknown one.
        """

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """The dead letter, or `DeadLetterNotFound`."""

    def list_dead_letters(
        self, *, before_id: str | None = None, limit: int = 50, open_only: bool = False
    ) -> list[DeadLetter]:
        """Newest first, at most `limit`; `before_id` pages (ids sort by creation time)."""

    def retry_with(
        self, dead_letter_id: str, submit: Callable[[DeadLetter], Execution]
    ) -> Execution:
        """Hold the open dead letter, call `submit` for its retry, close it as retried by it.

        Concurrent callers are serialized on the record: one submits, the others then get
        `DeadLetterClosed` naming that retry, without calling `submit`. If `submit` raises,
        the dead letter stays open.
        """

    def discard(self, dead_letter_id: str) -> DeadLetter:
        """Close an open dead letter without a retry; `DeadLetterClosed` if not open."""

    def count_dead_letters(self, *, open_only: bool = True) -> int:
        """How many dead letters there are (open ones only, by default)."""


def retry_dead_letter(
    dispatcher: Dispatcher, letters: DeadLetterStore, dead_letter_id: str
) -> Execution:
    """Retry an open dead letter once: a new execution whose parent is the dead one."""
    return letters.retry_with(dead_letter_id, lambda letter: dispatcher.retry(letter.execution_id))
