"""The reaper: nothing stays queued, running or cancelling because a worker or a message died.

It runs in every Celery worker's main process, one tick every heartbeat interval, and only one
worker at a time does the work (a PostgreSQL advisory lock). Each tick:

- running executions whose lease expired (their worker stopped heartbeating) go back to queued
  (`WorkerLedger.requeue_stale`) and are sent again;
- queued executions due for longer than `SPINE_REDELIVER_AFTER` seconds are sent again (their
  message was lost: a broker restarted without persistence, a broker down at submit); an
  execution still overdue is sent again after twice as long each time, up to `MAX_BACKOFF`;
- cancelling executions older than `SPINE_CANCEL_GRACE_SECONDS` are ended `cancelled` and their
  task is terminated (Celery revoke with terminate).

A duplicate message costs one claim that matches nothing, so re-sending is always safe.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from spine_advanced.celery.backend import BrokerUnreachable, CeleryBackend
from spine_core.errors import ErrorCategory, ExecutionNotFound, IllegalTransition
from spine_core.status import ExecutionStatus
from spine_intermediate.pg.connect import PgDatabase, scrub_password
from spine_intermediate.workers import WorkerLedger

log = logging.getLogger(__name__)

LOCK_KEY = 0x5350494E45  # "SPINE": one reaper at a time across all workers of a database
MAX_BACKOFF = 600.0
BATCH = 500
"""Most executions one tick re-sends or hard-cancels; the rest wait for the next tick."""

_OVERDUE = """
SELECT id, due_at FROM executions
WHERE status = 'queued' AND COALESCE(due_at, updated_at) < now() - make_interval(secs => $1)
ORDER BY id LIMIT $2
"""
_OVERSTAYED = """
SELECT id FROM executions
WHERE status = 'cancelling' AND updated_at < now() - make_interval(secs => $1)
ORDER BY id LIMIT $2
"""


class Reaper:
    """A daemon thread in the worker's main process; `tick` is one pass (tests call it)."""

    def __init__(self, backend: CeleryBackend, db: PgDatabase, workers: WorkerLedger) -> None:
        self.backend = backend
        self.settings = backend.settings
        self.db = db
        self.workers = workers
        self._resent: dict[str, tuple[float, float]] = {}  # id -> (next allowed, backoff)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Tick now and then every heartbeat interval, until `stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="spine-reaper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:
                log.warning("reaper tick failed: %s", self._safe(exc))
            self._stop.wait(self.settings.heartbeat_interval)

    def tick(self) -> bool:
        """One pass, if this worker holds the lock; False when another worker's reaper has it."""
        conn: Any = self.db.call(self.db.pool.acquire())
        try:
            if not self.db.call(conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)):
                return False
            try:
                self.requeue_stale()
                self.redeliver_overdue()
                self.hard_cancel()
            finally:
                self.db.call(conn.fetchval("SELECT pg_advisory_unlock($1)", LOCK_KEY))
        finally:
            self.db.call(self.db.pool.release(conn))
        return True

    def requeue_stale(self) -> None:
        """Running executions whose worker died: back to queued, and sent again."""
        if self.settings.lease_seconds <= 0:
            return
        for execution_id in self.workers.requeue_stale(self.settings.lease_seconds):
            log.warning("execution %s requeued: its worker stopped heartbeating", execution_id)
            self.backend.send(self.backend.store.get_execution(execution_id))

    def redeliver_overdue(self) -> None:
        """Queued executions nobody claimed in time: their message was lost, send another."""
        after = self.settings.redeliver_after
        rows = self.db.call(self.db.pool.fetch(_OVERDUE, float(after), BATCH))
        now = time.monotonic()
        overdue = {row["id"] for row in rows}
        self._resent = {k: v for k, v in self._resent.items() if k in overdue}
        for row in rows:
            allowed, backoff = self._resent.get(row["id"], (0.0, after))
            if now < allowed:
                continue
            try:
                self.backend.publish(row["id"], None)
            except BrokerUnreachable as exc:
                log.warning("execution %s overdue, not re-sent: %s", row["id"], exc)
                return  # the broker is down: the next tick tries again
            log.warning(
                "execution %s re-sent: queued and due for over %gs without a claim",
                row["id"],
                after,
            )
            self._resent[row["id"]] = (now + backoff, min(backoff * 2, MAX_BACKOFF))

    def hard_cancel(self) -> None:
        """Cancelling executions past the grace period: cancelled now, their task terminated."""
        grace = self.settings.cancel_grace
        rows = self.db.call(self.db.pool.fetch(_OVERSTAYED, float(grace), BATCH))
        for row in rows:
            try:
                self.backend.store.transition(
                    row["id"],
                    ExecutionStatus.CANCELLED,
                    error=f"cancelled: still running {grace:g}s after the cancel, terminated",
                    error_category=ErrorCategory.CANCELLED.value,
                    payload={"reason": "hard cancel after grace", "grace_seconds": grace},
                )
            except (IllegalTransition, ExecutionNotFound):
                continue  # it reached a step boundary in the meantime
            log.warning("execution %s hard-cancelled after %gs", row["id"], grace)
            try:
                self.backend.app.control.revoke(row["id"], terminate=True, signal="SIGKILL")
            except Exception as exc:
                log.warning(
                    "execution %s: could not terminate its task: %s", row["id"], self._safe(exc)
                )

    def _safe(self, exc: BaseException) -> str:
        """An error's text without the broker's or the database's password."""
        text = scrub_password(f"{type(exc).__name__}: {exc}", self.settings.broker_url)
        return scrub_password(text, self.db.url)
