"""`spine worker start --backend celery`: a real Celery worker (prefork) running `spine.advance`.

The main process holds a runtime for the reaper only; each pool process builds its own after
the fork (`worker_process_init`). SIGTERM is Celery's warm shutdown: no new messages, in-flight
executions finish; messages prefetched but not started go back to the broker (late acks).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

from celery import signals

from spine_advanced.celery.app import TASK_NAME
from spine_advanced.celery.backend import CeleryBackend
from spine_advanced.celery.process import PoolProcess, advance
from spine_advanced.celery.reaper import Reaper
from spine_advanced.runtime import build_runtime
from spine_core.tier import Runtime, Settings, Tier

log = logging.getLogger("spine.worker")


def run_worker(tier: Tier, settings: Settings, concurrency: int, loglevel: str = "WARNING") -> None:
    """Run the Celery worker in this process until it is told to stop (SIGTERM, SIGINT)."""
    settings = replace(settings, options={**settings.options, "backend": "celery"})
    runtime = build_runtime(tier, settings, listen=False)
    backend = runtime.backend
    assert isinstance(backend, CeleryBackend)
    app = backend.app
    app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)(advance)
    reaper = Reaper(backend, runtime.extras["database"], runtime.store)  # type: ignore[arg-type]
    hooks = _connect_signals(tier, settings, reaper)
    log.info(
        "celery worker starting: concurrency %d, broker %s, queue %s, database %s",
        concurrency,
        backend.settings.masked_broker_url,
        backend.settings.queue,
        runtime.extras["database"].target,
    )
    try:
        app.worker_main(
            [
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--queues",
                backend.settings.queue,
                "--hostname",
                f"spine-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                loglevel,
            ]
        )
    finally:
        reaper.stop()
        for signal, hook in hooks:
            signal.disconnect(hook)
        _close(runtime)
    log.info("celery worker stopped")


def _connect_signals(tier: Tier, settings: Settings, reaper: Reaper) -> list[tuple[Any, Any]]:
    def process_init(**kwargs: Any) -> None:
        PoolProcess.open(lambda: build_runtime(tier, settings, listen=False))

    def process_shutdown(**kwargs: Any) -> None:
        if PoolProcess.current is not None:
            PoolProcess.current.close()

    def ready(**kwargs: Any) -> None:
        reaper.start()
        log.info("celery worker ready; reaper running")

    def shutdown(**kwargs: Any) -> None:
        reaper.stop()

    hooks = [
        (signals.worker_process_init, process_init),
        (signals.worker_process_shutdown, process_shutdown),
        (signals.worker_ready, ready),
        (signals.worker_shutdown, shutdown),
    ]
    for signal, hook in hooks:
        signal.connect(hook, weak=False)
    return hooks


def _close(runtime: Runtime) -> None:
    try:
        runtime.close()
    except Exception as exc:
        log.warning("closing the worker's runtime: %s", exc)
