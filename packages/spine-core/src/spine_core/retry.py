"""Retry policies: how often and how late a failed step runs again (Temporal's model).

A retry re-runs only the failed step, after its backoff, through the durable due time: the
execution goes back to `queued` with a `due_at` and leaves its worker, so nothing sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from spine_core.errors import ErrorCategory, WorkflowDefinitionError

NOT_RETRIED_BY_DEFAULT = frozenset(
    {ErrorCategory.DATA_QUALITY, ErrorCategory.VALIDATION, ErrorCategory.CANCELLED}
)
"""Failures that another attempt cannot fix: bad data, bad params, a cancel."""


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` runs of a step, with exponential backoff between them.

    The n-th retry waits `initial_interval * backoff**(n-1)` seconds, at most `max_interval`,
    spread by `jitter`.
    """

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 100.0
    jitter: float = 0.0
    """A fraction (0..1): each delay is drawn from [delay * (1 - jitter), delay]."""
    non_retryable: frozenset[ErrorCategory] = field(default=NOT_RETRIED_BY_DEFAULT)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise WorkflowDefinitionError(
                f"RetryPolicy: max_attempts must be at least 1, got {self.max_attempts!r}"
            )
        for name in ("initial_interval", "max_interval"):
            if getattr(self, name) < 0:
                raise WorkflowDefinitionError(
                    f"RetryPolicy: {name} must not be negative, got {getattr(self, name)!r}"
                )
        if self.backoff < 1:
            raise WorkflowDefinitionError(
                f"RetryPolicy: backoff must be at least 1, got {self.backoff!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise WorkflowDefinitionError(
                f"RetryPolicy: jitter must be between 0 and 1, got {self.jitter!r}"
            )
        object.__setattr__(
            self, "non_retryable", frozenset(ErrorCategory(c) for c in self.non_retryable)
        )

    def retries(self, attempt: int, category: ErrorCategory) -> bool:
        """Whether the step that failed on `attempt` (1-based) runs again."""
        return attempt < self.max_attempts and category not in self.non_retryable

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt `attempt` (1-based) failed."""
        base = min(self.initial_interval * self.backoff ** (attempt - 1), self.max_interval)
        if self.jitter:
            base *= 1 - self.jitter * (rng or random).random()
        return base
