"""The execution status machine: one transition function that every tier shares.

Tiers use subsets (basic never queues, only advanced dead-letters) but none redefines it, so a
ledger written by one tier is always legal for the next.
"""

from __future__ import annotations

from enum import StrEnum

from spine_core.errors import IllegalTransition


class ExecutionStatus(StrEnum):
    """Where an execution is in its life."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


S = ExecutionStatus

ALLOWED_TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    # pending -> running is the basic tier's synchronous path, which has no queue.
    S.PENDING: frozenset({S.QUEUED, S.RUNNING, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    # running -> queued hands work back when a worker stops or its lease expires.
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLING, S.QUEUED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED, S.FAILED}),
    # failed -> queued resumes a failed execution from its failed step (`Dispatcher.resume`).
    S.FAILED: frozenset({S.DEAD_LETTERED, S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.DEAD_LETTERED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL_STATUSES = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt) | {S.FAILED}
"""Statuses in which no more work happens (a failed execution may still be dead-lettered)."""

ACTIVE_STATUSES = frozenset({S.PENDING, S.QUEUED, S.RUNNING, S.CANCELLING})
"""Statuses that hold a logical_key: at most one execution per key may be in them."""


def check_transition(current: ExecutionStatus | str, target: ExecutionStatus | str) -> None:
    """Raise `IllegalTransition` unless `current -> target` is allowed."""
    cur, tgt = ExecutionStatus(current), ExecutionStatus(target)
    if tgt not in ALLOWED_TRANSITIONS[cur]:
        raise IllegalTransition(cur.value, tgt.value)


def is_terminal(status: ExecutionStatus | str) -> bool:
    """True when no further work will happen for an execution in this status."""
    return ExecutionStatus(status) in TERMINAL_STATUSES
