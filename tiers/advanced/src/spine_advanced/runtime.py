"""Builds the advanced tier's `Runtime`: intermediate's builder, for this tier, on its schema.

On top it listens for the ledger's announcements (LISTEN/NOTIFY): `Dispatcher.wait` returns
when its execution is announced finished, and idle workers wake when work is announced, with
polling kept only as the slow fallback (`FALLBACK_POLL_SECONDS`). Map and sub-workflow steps
run as child executions (`PostgresFanOut`), claimed by any worker like the rest.
"""

from __future__ import annotations

from typing import Any

from spine_advanced.pg.fanout import PostgresFanOut
from spine_advanced.pg.listener import PgListener
from spine_advanced.pg.migrations import require_all_current
from spine_core.notifications import FALLBACK_POLL_SECONDS, NotificationHub
from spine_core.tier import Runtime, Settings, Tier
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.runtime import build_runtime as build_intermediate_runtime


def build_runtime(tier: Tier, settings: Settings) -> Runtime:
    """Intermediate's stores and LocalBackend, refusing a database without the advanced chain."""
    runtime = build_intermediate_runtime(tier, settings)
    try:
        db: PgDatabase = runtime.extras["database"]
        db.call(_require_all_current(db))
        hub = NotificationHub()
        listener = PgListener(settings.database_url, hub).start()
    except BaseException:
        runtime.close()
        raise
    runtime.on_close.insert(0, listener.close)
    runtime.extras["listener"] = listener
    runtime.dispatcher.notifications = hub
    fanout = PostgresFanOut(db)
    runtime.extras["runner"].fanout = runtime.dispatcher.fanout = fanout
    backend: Any = runtime.backend
    hub.on_work(backend.wake)
    backend.max_poll_interval = FALLBACK_POLL_SECONDS
    return runtime


async def _require_all_current(db: PgDatabase) -> None:
    async with db.pool.acquire() as conn:
        await require_all_current(conn)
