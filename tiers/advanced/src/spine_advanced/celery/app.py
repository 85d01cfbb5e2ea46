"""The Celery application and its settings, the same in clients and in workers.

A message is only an execution id, sent as task `spine.advance`; whoever receives it claims the
execution in the ledger first, so a duplicate or a late message does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from celery import Celery

from spine_intermediate.pg.connect import redact_url
from spine_intermediate.runtime import float_option

TASK_NAME = "spine.advance"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "spine"
DEFAULT_REDELIVER_AFTER = 30.0
DEFAULT_CANCEL_GRACE_SECONDS = 30.0
BROKER_TIMEOUT = 2.0
"""Seconds a send or a health check waits for the broker before calling it unreachable."""


@dataclass(frozen=True)
class CelerySettings:
    """`SPINE_BROKER_URL`, `SPINE_CELERY_QUEUE`, `SPINE_REDELIVER_AFTER`, the lease settings."""

    broker_url: str = DEFAULT_BROKER_URL
    queue: str = DEFAULT_QUEUE
    redeliver_after: float = DEFAULT_REDELIVER_AFTER
    cancel_grace: float = DEFAULT_CANCEL_GRACE_SECONDS
    lease_seconds: float = 60.0
    heartbeat_interval: float = 5.0

    @classmethod
    def of(cls, options: Mapping[str, str]) -> CelerySettings:
        """From the `SPINE_*` options (lower-cased, without the prefix)."""
        return cls(
            broker_url=options.get("broker_url") or DEFAULT_BROKER_URL,
            queue=options.get("celery_queue") or DEFAULT_QUEUE,
            redeliver_after=float_option(options, "redeliver_after", DEFAULT_REDELIVER_AFTER),
            cancel_grace=float_option(
                options, "cancel_grace_seconds", DEFAULT_CANCEL_GRACE_SECONDS
            ),
            lease_seconds=float_option(options, "lease_seconds", 60.0),
            heartbeat_interval=float_option(options, "heartbeat_interval", 5.0),
        )

    @property
    def masked_broker_url(self) -> str:
        """The broker URL with its password replaced by `***`: the only form ever shown."""
        return redact_url(self.broker_url)


def make_app(settings: CelerySettings) -> Celery:
    """A Celery app on the broker: late acks, a lost worker's task back in the queue, prefetch 1.

    Prefetch 1 keeps a busy pool process from holding messages others could run; results are
    not kept (the ledger has them).
    """
    app = Celery("spine", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_connection_timeout=BROKER_TIMEOUT,
        broker_connection_retry_on_startup=True,
        # A send fails fast (one attempt) instead of retrying for seconds: the row is queued
        # already and the reaper sends it again; a worker's own connection retries as usual.
        broker_transport_options={
            "socket_connect_timeout": BROKER_TIMEOUT,
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.2,
        },
        # A pool process opens its own database pool after the fork; on a busy machine that
        # can take longer than Celery's default 4 s.
        worker_proc_alive_timeout=30.0,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=True,
        task_serializer="json",
        accept_content=["json"],
    )
    return app
