"""`Heartbeat`: a thread that keeps a worker's lease, and its executions' leases, alive.

Shared by every backend whose workers hold leases in the ledger (LocalBackend's threads, a
Celery pool process): a worker that stops beating, killed or frozen, has its executions requeued
by whoever reaps (`WorkerLedger.requeue_stale`) once `lease_seconds` have passed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from spine_intermediate.workers import WorkerLedger

log = logging.getLogger(__name__)


class Heartbeat:
    """Every `interval` seconds: beat for `running()`, then call `after_beat` (e.g. reap)."""

    def __init__(
        self,
        workers: WorkerLedger | None,
        worker_id: str,
        interval: float,
        running: Callable[[], list[str]],
        after_beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.workers = workers
        self.worker_id = worker_id
        self.interval = interval
        self.running = running
        self.after_beat = after_beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run `after_beat` once now, then beat in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="spine-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop beating (the lease then runs out unless the work was handed back)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def beat(self) -> None:
        """One heartbeat now; a failed write is logged, never fatal."""
        if self.workers is None:
            return
        try:
            self.workers.heartbeat(self.worker_id, self.running())
        except Exception as exc:
            log.warning("heartbeat of worker %s failed: %s", self.worker_id, exc)

    def _loop(self) -> None:
        self.after_beat()
        while not self._stop.wait(self.interval):
            self.beat()
            self.after_beat()
