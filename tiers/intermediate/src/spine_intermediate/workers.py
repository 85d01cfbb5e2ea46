"""`WorkerLedger`: what a ledger keeps about worker processes, beyond core's `LedgerStore`.

Worker rows and heartbeats let a worker killed mid-run be noticed (its lease expires) and its
executions requeued. `PostgresLedgerStore` keeps them; `LocalBackend` also runs over a ledger
without them (core's in-memory store in the backend conformance suite), and then simply has no
cross-process bookkeeping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from spine_core.execution import Execution


@runtime_checkable
class WorkerLedger(Protocol):
    """Worker processes, their heartbeats, and the executions they hold."""

    def register_worker(self, worker_id: str, concurrency: int) -> None:
        """Record a worker process as started."""

    def heartbeat(self, worker_id: str, running_ids: list[str]) -> None:
        """A worker is alive; so are the executions it is running."""

    def requeue_stale(self, lease_seconds: float) -> list[str]:
        """Hand back `running` executions whose worker stopped heartbeating; their ids."""

    def worker_stopped(self, worker_id: str) -> None:
        """Record a clean worker shutdown."""

    def last_worker_heartbeat(self) -> datetime | None:
        """When any running worker was last seen."""

    def claim(self, execution_id: str, worker_id: str) -> Execution | None:
        """Claim one specific execution if it is still queued; None if someone else has it."""
