"""What runs in each Celery pool process: its own runtime, its heartbeat, the task body.

A pool process is forked from the worker's main process, whose database pool and loop thread it
must not use: `worker_process_init` builds a fresh runtime here (`PoolProcess.open`), and
`worker_process_shutdown` closes it and records the process as stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from spine_advanced.celery.backend import CeleryBackend
from spine_core.execution import utcnow
from spine_core.status import ExecutionStatus
from spine_core.tier import Runtime
from spine_intermediate.backend import new_worker_id
from spine_intermediate.heartbeat import Heartbeat
from spine_intermediate.workers import WorkerLedger

log = logging.getLogger(__name__)


class PoolProcess:
    """One pool process: claims the execution a message names, advances it, beats for it."""

    current: PoolProcess | None = None
    """The process's own instance, set by `open` after the fork."""

    def __init__(self, runtime: Runtime) -> None:
        backend = runtime.backend
        if not isinstance(backend, CeleryBackend) or not isinstance(runtime.store, WorkerLedger):
            raise TypeError("a Celery pool process needs the Celery backend on a worker ledger")
        self.runtime = runtime
        self.backend: CeleryBackend = backend
        self.workers: WorkerLedger = runtime.store
        self.worker_id = new_worker_id()
        self._running: list[str] = []
        self._lock = threading.Lock()
        self.heartbeat = Heartbeat(
            self.workers, self.worker_id, backend.settings.heartbeat_interval, self.running
        )

    @classmethod
    def open(cls, open_runtime: Callable[[], Runtime]) -> PoolProcess:
        """Build this process's runtime, register it as a worker and start its heartbeat."""
        process = cls(open_runtime())
        process.workers.register_worker(process.worker_id, 1)
        process.heartbeat.start()
        cls.current = process
        return process

    def close(self) -> None:
        """Stop beating, record a clean stop, release the connections."""
        self.heartbeat.stop()
        try:
            self.workers.worker_stopped(self.worker_id)
        except Exception as exc:
            log.warning("worker %s: could not record its stop: %s", self.worker_id, exc)
        self.runtime.close()
        PoolProcess.current = None

    def running(self) -> list[str]:
        """The execution this process is advancing now, if any."""
        with self._lock:
            return list(self._running)

    def run(self, execution_id: str) -> str:
        """Claim and advance one execution; what happened, for the task's log line.

        A message for an execution that is not queued (already running elsewhere, finished,
        cancelled: a duplicate) does nothing; one that came early (before `due_at`) is sent
        again for its time. A run that ends queued with a `due_at` (a retry's backoff, a
        durable wait) is sent again for then.
        """
        row = self.workers.claim(execution_id, self.worker_id)
        if row is None:
            return self._not_claimed(execution_id)
        with self._lock:
            self._running.append(execution_id)
        try:
            after = self.backend.runner.advance(execution_id, claimed=row)
        finally:
            with self._lock:
                self._running.remove(execution_id)
        if after.status is ExecutionStatus.QUEUED:
            self.backend.send(after)
        return after.status.value

    def _not_claimed(self, execution_id: str) -> str:
        current = self.runtime.store.get_execution(execution_id)
        early = current.due_at is not None and current.due_at > utcnow()
        if current.status is ExecutionStatus.QUEUED and early:
            self.backend.send(current)
            return "not due yet; sent again for its due time"
        return f"{current.status.value}; nothing to do"


def advance(execution_id: str) -> str:
    """The `spine.advance` task body, run in a pool process."""
    process = PoolProcess.current
    if process is None:
        raise RuntimeError("this Celery process has no Market Spine runtime (worker_process_init)")
    outcome = process.run(execution_id)
    log.debug("execution %s: %s", execution_id, outcome)
    return outcome
