"""The execution record: one run of a pipeline or workflow, as the ledger keeps it."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from spine_core.status import ExecutionStatus


class Lane(StrEnum):
    """A queue partition, so backfills cannot starve the daily job."""

    NORMAL = "normal"
    BACKFILL = "backfill"
    SLOW = "slow"


class TriggerSource(StrEnum):
    """Who asked for the run."""

    CLI = "cli"
    API = "api"
    SCHEDULE = "schedule"
    RETRY = "retry"
    WORKFLOW = "workflow"
    MANUAL = "manual"


_id_lock = threading.Lock()
_last_id_ms = 0
_id_seq = 0


def new_execution_id() -> str:
    """Ids sort by creation time (uuid7-like) so listings page cheaply.

    Within one process they are strictly increasing, even for ids made in the same millisecond
    (a counter follows the timestamp), so "newest first" and "oldest queued" are exact.
    """
    global _last_id_ms, _id_seq
    ms = int(datetime.now(UTC).timestamp() * 1000)
    with _id_lock:
        if ms > _last_id_ms:
            _last_id_ms, _id_seq = ms, 0
        else:
            # Same millisecond, or the clock stepped back: keep order with the counter.
            _id_seq += 1
            if _id_seq > 0xFFFFFF:
                _last_id_ms, _id_seq = _last_id_ms + 1, 0
        ms, seq = _last_id_ms, _id_seq
    return f"{ms:012x}-{seq:06x}{uuid.uuid4().hex[:14]}"


def utcnow() -> datetime:
    """The one clock the ledger uses; always timezone-aware UTC."""
    return datetime.now(UTC)


CREATABLE_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.QUEUED)
"""The statuses a new execution may start in."""


@dataclass(frozen=True)
class NewExecution:
    """What a dispatcher asks the ledger to create."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    lane: Lane = Lane.NORMAL
    trigger_source: TriggerSource = TriggerSource.MANUAL
    logical_key: str | None = None
    parent_execution_id: str | None = None
    retry_count: int = 0
    backend: str = "inline"
    id: str = field(default_factory=new_execution_id)
    status: ExecutionStatus = ExecutionStatus.PENDING
    """`queued` creates the row ready to claim (events `created` then `queued`, one transaction):
    backends whose workers claim from the ledger save a round trip per execution."""

    def __post_init__(self) -> None:
        if self.status not in CREATABLE_STATUSES:
            allowed = ", ".join(s.value for s in CREATABLE_STATUSES)
            raise ValueError(f"an execution is created {allowed}, not {self.status.value}")


@dataclass(frozen=True)
class Execution:
    """A ledger row. Changed only through `LedgerStore.transition`."""

    id: str
    name: str
    params: dict[str, Any]
    status: ExecutionStatus
    lane: Lane
    trigger_source: TriggerSource
    logical_key: str | None
    parent_execution_id: str | None
    retry_count: int
    backend: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    error_category: str | None = None
    result: dict[str, Any] | None = None
    worker_id: str | None = None
    due_at: datetime | None = None
    """A queued execution is not claimed before this (retry backoff, durable wait)."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Not stored: what the backend could not do at submit (e.g. broker unreachable, the
    execution stays queued and is sent later); the API and the CLI show it to the submitter."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, the same shape the CLI and the API print."""
        return {
            "id": self.id,
            "name": self.name,
            "params": self.params,
            "status": self.status.value,
            "lane": self.lane.value,
            "trigger_source": self.trigger_source.value,
            "logical_key": self.logical_key,
            "parent_execution_id": self.parent_execution_id,
            "retry_count": self.retry_count,
            "backend": self.backend,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "error_category": self.error_category,
            "result": self.result,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }


@dataclass(frozen=True)
class ExecutionFilter:
    """Listing filters; `before_id` is the cursor (ids sort by creation time)."""

    status: ExecutionStatus | None = None
    name: str | None = None
    created_since: datetime | None = None
    logical_key: str | None = None
    parent_execution_id: str | None = None
    before_id: str | None = None
    limit: int = 50
