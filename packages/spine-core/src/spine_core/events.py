"""Event types of the append-only execution ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from spine_core.status import ExecutionStatus


class EventType(StrEnum):
    """What happened to an execution; every status change writes exactly one."""

    CREATED = "created"
    QUEUED = "queued"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    STAGE_STARTED = "stage_started"
    STAGE_COMPLETED = "stage_completed"
    STAGE_FAILED = "stage_failed"


STATUS_EVENTS: dict[ExecutionStatus, EventType] = {
    ExecutionStatus.PENDING: EventType.CREATED,
    ExecutionStatus.QUEUED: EventType.QUEUED,
    ExecutionStatus.RUNNING: EventType.STARTED,
    ExecutionStatus.COMPLETED: EventType.COMPLETED,
    ExecutionStatus.FAILED: EventType.FAILED,
    ExecutionStatus.DEAD_LETTERED: EventType.DEAD_LETTERED,
    ExecutionStatus.CANCELLING: EventType.CANCEL_REQUESTED,
    ExecutionStatus.CANCELLED: EventType.CANCELLED,
}
"""The event each status change writes, in the same transaction as the change."""

STAGE_EVENTS = frozenset(
    {EventType.STAGE_STARTED, EventType.STAGE_COMPLETED, EventType.STAGE_FAILED}
)


@dataclass(frozen=True)
class ExecutionEvent:
    """One ledger row; `seq` orders an execution's events, never the clock."""

    execution_id: str
    seq: int
    event_type: EventType
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None
