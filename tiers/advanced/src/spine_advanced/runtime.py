"""Builds the advanced tier's `Runtime`: intermediate's builder, for this tier, on its schema.

On top it listens for the ledger's announcements (LISTEN/NOTIFY): `Dispatcher.wait` returns
when its execution is announced finished, and idle workers wake when work is announced, with
polling kept only as the slow fallback (`FALLBACK_POLL_SECONDS`). Map and sub-workflow steps
run as child executions (`PostgresFanOut`), claimed by any worker like the rest.
Executions whose retries are used up go to the dead letters
(`SPINE_DEAD_LETTER_ALL_FAILURES=1`: every final failure does).

`SPINE_BACKEND` picks who runs the work: `local` (the default, intermediate's LocalBackend
threads) or `celery` (`CeleryBackend`: messages on `SPINE_BROKER_URL`, run by
`spine worker start --backend celery`). Everything else is the same runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spine_advanced.pg.dead_letters import PostgresDeadLetterStore
from spine_advanced.pg.fanout import PostgresFanOut
from spine_advanced.pg.listener import PgListener
from spine_advanced.pg.migrations import require_all_current
from spine_core.dead_letters import DEAD_LETTER_ALL_FAILURES_OPTION
from spine_core.errors import ConfigurationError
from spine_core.notifications import FALLBACK_POLL_SECONDS, NotificationHub
from spine_core.tier import Runtime, Settings, Tier
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.runtime import BackendFactory
from spine_intermediate.runtime import build_runtime as build_intermediate_runtime

BACKENDS = ("local", "celery")


def backend_name(settings: Settings) -> str:
    """`SPINE_BACKEND`, `local` unless set; a clear error for an unknown one."""
    name = (settings.options.get("backend") or "local").strip().lower()
    if name not in BACKENDS:
        raise ConfigurationError(
            f"SPINE_BACKEND must be one of {', '.join(BACKENDS)}, got {name!r}"
        )
    return name


def _celery_backend(settings: Settings) -> BackendFactory:
    from spine_advanced.celery.app import CelerySettings
    from spine_advanced.celery.backend import CeleryBackend

    celery_settings = CelerySettings.of(settings.options)
    return lambda ledger, runner: CeleryBackend(ledger, runner, celery_settings)


def build_runtime(tier: Tier, settings: Settings, *, listen: bool = True) -> Runtime:
    """Intermediate's stores and the chosen backend, refusing a database without the chain.

    `listen=False` skips the LISTEN connection, for processes that never wait on the ledger
    (Celery pool processes and the worker's main process: every announcement would wake them
    for nothing).
    """
    celery = backend_name(settings) == "celery"
    runtime = build_intermediate_runtime(
        tier, settings, backend=_celery_backend(settings) if celery else None
    )
    try:
        db: PgDatabase = runtime.extras["database"]
        db.call(_require_all_current(db))
        _wire_durable_stores(runtime, db, settings)
        if not listen:
            return runtime
        hub = NotificationHub()
        listener = PgListener(settings.database_url, hub).start()
    except BaseException:
        runtime.close()
        raise
    runtime.on_close.insert(0, listener.close)
    runtime.extras["listener"] = listener
    runtime.dispatcher.notifications = hub
    if not celery:
        backend: Any = runtime.backend
        hub.on_work(backend.wake)
        backend.max_poll_interval = FALLBACK_POLL_SECONDS
    return runtime


def _wire_durable_stores(runtime: Runtime, db: PgDatabase, settings: Settings) -> None:
    """Children of map steps and the dead letters, for every process of this tier."""
    runner = runtime.extras["runner"]
    runner.fanout = runtime.dispatcher.fanout = PostgresFanOut(db)
    letters = PostgresDeadLetterStore(db)
    runner.dead_letters = letters
    runner.dead_letter_all_failures = flag_option(settings.options, DEAD_LETTER_ALL_FAILURES_OPTION)
    runtime.extras["dead_letters"] = letters


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def flag_option(options: Mapping[str, str], name: str) -> bool:
    """A yes/no `SPINE_<NAME>` setting (1/0, true/false, yes/no, on/off); off when unset."""
    raw = (options.get(name) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"SPINE_{name.upper()} must be 1 or 0 (true/false), got {raw!r}")


async def _require_all_current(db: PgDatabase) -> None:
    async with db.pool.acquire() as conn:
        await require_all_current(conn)
