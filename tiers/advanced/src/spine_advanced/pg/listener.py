"""LISTEN on PostgreSQL for the announcements of migration 2, feeding a `NotificationHub`.

One dedicated connection per process (LISTEN needs a session of its own, outside the pool),
on its own event loop thread. When the connection is lost it reconnects with backoff and, once
back, announces work so that idle workers look at the ledger for anything missed meanwhile;
waiters for finished executions are covered by their fallback poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import asyncpg

from spine_core.notifications import NotificationHub
from spine_intermediate.pg.connect import CONNECT_TIMEOUT, redact_url
from spine_intermediate.pg.loop import AsyncBridge

FINISHED_CHANNEL = "spine_execution_finished"
WORK_CHANNEL = "spine_work"
MAX_RECONNECT_DELAY = 5.0

log = logging.getLogger("spine.notifications")


class PgListener:
    """Keeps a LISTEN connection to `url` open and turns its notifications into `hub` calls."""

    def __init__(self, url: str, hub: NotificationHub) -> None:
        self.url = url
        self.hub = hub
        self.connected = threading.Event()
        self.server_pid: int | None = None
        self.reconnects = 0
        self._bridge = AsyncBridge("spine-pg-listen")
        self._task: asyncio.Task[None]

    def start(self, wait: float = 1.0) -> PgListener:
        """Start listening; wait up to `wait` seconds for the first connection."""
        self._bridge.call(self._spawn())
        self.connected.wait(wait)
        return self

    async def _spawn(self) -> None:
        # The loop holds tasks weakly: keep ours, or it is collected while it awaits.
        self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    def close(self) -> None:
        """Stop listening and close the connection."""
        self._bridge.call(self._stop())
        self._bridge.close()

    async def _stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(dsn=self.url, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot LISTEN on %s (%s); retrying", redact_url(self.url), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(FINISHED_CHANNEL, self._on_finished)
                await conn.add_listener(WORK_CHANNEL, self._on_work)
                self.server_pid = conn.get_server_pid()
                self.connected.set()
                delay = 0.1
                self.hub.work_available()
                await lost.wait()
                self.reconnects += 1
                log.warning("LISTEN connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN failed (%s); reconnecting", exc)
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()
                conn.terminate()

    def _on_finished(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.hub.finished(payload)

    def _on_work(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.hub.work_available()
