"""`CeleryBackend`: the dispatcher's and the runner's way to hand an execution to Celery.

The execution is already `queued` in the ledger when its message is sent (`creates_as`), so a
message that never arrives costs time, not work: the reaper sends it again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from celery import Celery

from spine_advanced.celery.app import BROKER_TIMEOUT, TASK_NAME, CelerySettings, make_app
from spine_core.backend import BackendHealth
from spine_core.execution import Execution
from spine_core.ports import LedgerStore
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus
from spine_intermediate.pg.connect import scrub_password

log = logging.getLogger(__name__)


class BrokerUnreachable(Exception):
    """The broker did not take a message; the text names it with its password masked."""


class CeleryBackend:
    """Sends one `spine.advance` message per execution id; Celery workers run them.

    Clients (the API, `spine run --no-wait`) only send; `spine worker start --backend celery`
    runs the worker, whose pool processes claim and advance (`process`), and whose reaper
    re-sends what was lost (`reaper`).
    """

    name = "celery"
    creates_as = ExecutionStatus.QUEUED

    def __init__(
        self, store: LedgerStore, runner: ExecutionRunner, settings: CelerySettings
    ) -> None:
        self.store = store
        self.runner = runner
        self.settings = settings
        self.app: Celery = make_app(settings)
        runner.on_queued = self.send

    # -- sending ----------------------------------------------------------------------------

    def publish(self, execution_id: str, eta: datetime | None = None) -> None:
        """Send the message now (to run at `eta`); `BrokerUnreachable` if the broker refuses.

        The task id is the execution id, so a hard cancel can revoke it by that id.
        """
        try:
            self.app.send_task(
                TASK_NAME,
                args=[execution_id],
                task_id=execution_id,
                eta=eta,
                queue=self.settings.queue,
                retry=False,
            )
        except Exception as exc:
            raise BrokerUnreachable(self._describe(exc)) from None

    def send(self, execution: Execution) -> None:
        """Send a queued execution's message, due at its `due_at`; a failure is only logged.

        Nothing is lost when the broker is down: the row stays queued and the reaper sends it
        once it is overdue (`SPINE_REDELIVER_AFTER`).
        """
        try:
            self.publish(execution.id, execution.due_at)
        except BrokerUnreachable as exc:
            log.warning("execution %s stays queued: %s", execution.id, exc)

    def _describe(self, exc: BaseException) -> str:
        reason = scrub_password(f"{type(exc).__name__}: {exc}", self.settings.broker_url)
        return f"broker {self.settings.masked_broker_url} unreachable ({reason})"

    # -- Backend ----------------------------------------------------------------------------

    def submit(self, execution_id: str) -> Execution | None:
        """Send its message; if the broker is down, the row (still queued) with a warning."""
        try:
            self.publish(execution_id)
        except BrokerUnreachable as exc:
            warning = f"{exc}; the execution stays queued and is sent once the broker is back"
            log.warning("execution %s: %s", execution_id, warning)
            return replace(self.store.get_execution(execution_id), warnings=(warning,))
        return None

    def cancel(self, execution_id: str) -> None:
        """Nothing to send: the ledger says `cancelling`, so the runner stops at the next step.

        After `SPINE_CANCEL_GRACE_SECONDS` the reaper ends it and terminates its task
        (`Reaper.hard_cancel`).
        """

    def health(self) -> BackendHealth:
        """Is the broker reachable (URL masked), and which Celery workers answer a ping."""
        info: dict[str, Any] = {
            "broker": self.settings.masked_broker_url,
            "queue": self.settings.queue,
        }
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
        except Exception as exc:
            info["broker_reachable"] = False
            return BackendHealth(False, self._describe(exc), info)
        info["broker_reachable"] = True
        try:
            replies = self.app.control.ping(timeout=1.0) or []
        except Exception as exc:
            replies = []
            info["ping_error"] = scrub_password(str(exc), self.settings.broker_url)
        workers = sorted(name for reply in replies for name in reply)
        info["workers"] = workers
        where = f"broker {self.settings.masked_broker_url} reachable"
        if not workers:
            return BackendHealth(
                False,
                f"{where}; no Celery worker answers: start one with "
                "spine worker start --backend celery",
                info,
            )
        return BackendHealth(True, f"{where}; {len(workers)} Celery worker(s) alive", info)

    def start(self) -> None:
        """Nothing to start here: work runs in `spine worker start --backend celery`."""

    def stop(self) -> None:
        """Let go of the app; its broker connections stay in kombu's process-wide pool.

        (Closing that pool would break every other app of this process on the same broker.)
        """
        self.app.close()
