"""`LocalBackend`: a pool of worker threads that claim queued executions from the ledger."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from spine_core.backend import BackendHealth
from spine_core.errors import ExecutionNotFound, IllegalTransition
from spine_core.execution import Execution, Lane, utcnow
from spine_core.ports import LedgerStore
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus, is_terminal
from spine_intermediate.heartbeat import Heartbeat
from spine_intermediate.pg.connect import DatabaseUnreachable
from spine_intermediate.workers import WorkerLedger

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """`host:pid:random`, unique per backend instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LocalBackend:
    """Queues executions in the ledger; N threads claim (`FOR UPDATE SKIP LOCKED`) and run them.

    The dispatcher creates its executions already `queued` (`creates_as`), so `submit` only
    wakes an idle worker, and submissions made while no worker runs wait in the ledger until
    one starts. `stop` stops claiming, lets in-flight runs finish within
    `grace` seconds, and hands anything still running back to `queued`.
    """

    name = "local"
    creates_as = ExecutionStatus.QUEUED

    def __init__(
        self,
        store: LedgerStore,
        runner: ExecutionRunner,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.02,
        max_poll_interval: float = 0.5,
        grace: float = 30.0,
        heartbeat_interval: float = 5.0,
        lease_seconds: float = 60.0,
        lanes: tuple[Lane, ...] | None = None,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.workers = store if isinstance(store, WorkerLedger) else None
        """The store's worker bookkeeping, if it keeps any (`WorkerLedger`)."""
        self.runner = runner
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.grace = grace
        self.heartbeat_interval = heartbeat_interval
        self.lease_seconds = lease_seconds
        self.lanes = lanes
        self.worker_id = worker_id or new_worker_id()
        self._stopping = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._heartbeat = Heartbeat(
            self.workers, self.worker_id, heartbeat_interval, lambda: self.in_flight, self._reap
        )
        self._in_flight: dict[str, str] = {}  # execution id -> thread worker id
        self._lock = threading.Lock()
        self._started = False
        self.completed = 0
        self.run_on_submit = False
        """When True, `submit` also runs the execution in the calling thread (`spine run`)."""

    # -- Backend ----------------------------------------------------------------------------

    def submit(self, execution_id: str) -> Execution | None:
        """Wake an idle worker for the queued execution; nothing is written, so None.

        With `run_on_submit`, run it in this thread instead and return the finished row.
        """
        if self.run_on_submit:
            return self.run_now(execution_id) or self.store.get_execution(execution_id)
        self.wake()
        return None

    def wake(self) -> None:
        """Wake one idle worker to claim (new work was submitted or announced)."""
        with self._wake:
            self._wake.notify()

    def cancel(self, execution_id: str) -> None:
        """Running executions see `cancelling` in the ledger between steps; nothing else to do."""

    def health(self) -> BackendHealth:
        """Healthy while started and its threads are alive."""
        alive = sum(t.is_alive() for t in self._threads)
        info: dict[str, Any] = {
            "worker_id": self.worker_id,
            "threads": alive,
            "concurrency": self.concurrency,
            "in_flight": len(self._in_flight),
        }
        if not self._started:
            return self._remote_workers_health(info)
        if alive < self.concurrency:
            return BackendHealth(
                False, f"only {alive} of {self.concurrency} worker threads alive", info
            )
        return BackendHealth(True, f"{alive} worker threads", info)

    def _remote_workers_health(self, info: dict[str, Any]) -> BackendHealth:
        """No threads here: the work is done by `spine worker start` processes, if any run."""
        seen = self.workers.last_worker_heartbeat() if self.workers is not None else None
        if seen is None:
            return BackendHealth(False, "no worker seen: start one with spine worker start", info)
        age = (utcnow() - seen).total_seconds()
        info["last_heartbeat_seconds_ago"] = round(age, 1)
        if age > self.lease_seconds:
            return BackendHealth(
                False, f"no worker seen for {age:.0f}s: start one with spine worker start", info
            )
        return BackendHealth(True, f"a worker process was seen {age:.1f}s ago", info)

    def start(self) -> None:
        """Start the worker threads and the heartbeat."""
        if self._started:
            return
        self._stopping.clear()
        self._bookkeep(lambda workers: workers.register_worker(self.worker_id, self.concurrency))
        for n in range(self.concurrency):
            thread = threading.Thread(
                target=self._work,
                args=(f"{self.worker_id}/{n}",),
                name=f"spine-worker-{n}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self._heartbeat.interval = self.heartbeat_interval
        self._heartbeat.worker_id = self.worker_id
        self._heartbeat.start()
        self._started = True
        log.info("worker %s started with %d threads", self.worker_id, self.concurrency)

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; wait up to `grace` seconds; requeue whatever is still running."""
        if not self._started:
            return
        grace = self.grace if grace is None else grace
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftovers = dict(self._in_flight)
        for execution_id in leftovers:
            try:
                self.store.transition(
                    execution_id,
                    ExecutionStatus.QUEUED,
                    payload={
                        "reason": "worker stopped before the run finished",
                        "worker_id": self.worker_id,
                    },
                )
                log.warning("execution %s handed back to the queue (worker stopping)", execution_id)
            except (IllegalTransition, ExecutionNotFound):
                pass  # it finished in the meantime
        self._heartbeat.stop()
        self._threads = []
        self._started = False
        self._bookkeep(lambda workers: workers.worker_stopped(self.worker_id))
        log.info("worker %s stopped (%d handed back)", self.worker_id, len(leftovers))

    # -- running ----------------------------------------------------------------------------

    def run_now(self, execution_id: str, *, timeout: float | None = None) -> Execution | None:
        """Advance this one execution in the calling thread until it ends (`spine run`).

        A retry's backoff or a `Step.wait` puts it back in the queue with a due time: this
        thread claims it again once it is due, so the command returns only when the run has
        ended. While it waits for its children (a map), this thread runs them too. If another
        worker holds it, wait for that worker. Returns the final row when this thread ended it,
        else None.
        """
        thread_id = f"{self.worker_id}/inline"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.workers is not None:
                execution = self.workers.claim(execution_id, thread_id) or self._claim_child(
                    execution_id, thread_id
                )
                if execution is not None:
                    advanced = self._run_claimed(execution, thread_id)
                    if advanced and advanced.id == execution_id and is_terminal(advanced.status):
                        return advanced
                    continue
            current = self.store.get_execution(execution_id)
            if is_terminal(current.status):
                return None
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def _claim_child(self, parent_id: str, thread_id: str) -> Execution | None:
        """A queued child of the parent, so that `spine run` of a map needs no other worker."""
        if self.runner.fanout is None or self.workers is None:
            return None
        for child in self.runner.fanout.list_children(parent_id):
            if child.status is ExecutionStatus.QUEUED:
                claimed = self.workers.claim(child.id, thread_id)
                if claimed is not None:
                    return claimed
        return None

    def _run_claimed(self, execution: Execution, thread_id: str) -> Execution | None:
        execution_id = execution.id
        with self._lock:
            self._in_flight[execution_id] = thread_id
        try:
            finished = self.runner.advance(execution_id, claimed=execution)
            self.completed += 1
            return finished
        except IllegalTransition:
            log.warning(
                "execution %s was handed back while running; its result is dropped", execution_id
            )
        except DatabaseUnreachable as exc:
            log.warning("execution %s dropped: %s", execution_id, exc)
            self._hand_back_when_reachable(execution_id, str(exc))
        except Exception:
            log.exception("worker failed while running execution %s", execution_id)
        finally:
            with self._lock:
                self._in_flight.pop(execution_id, None)
        return None

    def _hand_back_when_reachable(self, execution_id: str, error: str) -> None:
        """Requeue an execution whose run lost the database, as soon as the database answers.

        Handing back rather than failing it: every finished step is checkpointed, so the next
        claim resumes at the step that was interrupted, and nothing completed runs again. If
        the backend stops first, the lease reaper requeues it later.
        """
        delay = self.poll_interval
        while not self._stopping.is_set():
            try:
                self.store.transition(
                    execution_id,
                    ExecutionStatus.QUEUED,
                    payload={
                        "reason": "connection lost",
                        "error": error,
                        "worker_id": self.worker_id,
                    },
                )
            except DatabaseUnreachable:
                self._stopping.wait(delay)
                delay = min(delay * 2, self.max_poll_interval)
                continue
            except (IllegalTransition, ExecutionNotFound):
                return  # its last write landed after all, or someone else moved it
            log.warning("execution %s handed back to the queue (connection lost)", execution_id)
            self.wake()
            return

    def _work(self, thread_id: str) -> None:
        delay = self.poll_interval
        while not self._stopping.is_set():
            try:
                execution = self.store.claim_next(thread_id, lanes=self.lanes)
            except Exception as exc:
                log.error("worker %s could not claim work: %s", thread_id, exc)
                execution = None
                delay = self.max_poll_interval
            if execution is None:
                with self._wake:
                    if not self._stopping.is_set():
                        self._wake.wait(delay)
                delay = min(delay * 2, self.max_poll_interval)
                continue
            delay = self.poll_interval
            log.debug("worker %s claimed %s (%s)", thread_id, execution.id, execution.name)
            self._run_claimed(execution, thread_id)

    def _reap(self) -> None:
        if self.workers is None or self.lease_seconds <= 0:
            return
        try:
            for execution_id in self.workers.requeue_stale(self.lease_seconds):
                log.warning("execution %s requeued: its worker stopped heartbeating", execution_id)
        except Exception as exc:
            log.warning("could not requeue stale executions: %s", exc)

    def _bookkeep(self, write: Callable[[WorkerLedger], None]) -> None:
        """Worker bookkeeping is best effort: a failed write is logged, never fatal."""
        if self.workers is None:
            return
        try:
            write(self.workers)
        except Exception as exc:
            log.warning("worker bookkeeping failed: %s", exc)

    @property
    def in_flight(self) -> list[str]:
        """Ids of executions this backend is running now."""
        with self._lock:
            return list(self._in_flight)
