"""Learning of ledger changes without polling: the `LedgerNotifications` port and its hub.

A store that can announce changes (the in-memory store directly; PostgreSQL through
LISTEN/NOTIFY in the advanced tier) publishes into a `NotificationHub`; `Dispatcher.wait` and idle
workers block on it instead of re-reading the ledger. Announcements can be lost (a dropped
connection), so every waiter still re-reads the ledger after a bounded timeout: polling stays,
only as a slow fallback.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

FALLBACK_POLL_SECONDS = 1.0
"""How long a waiter trusts the notifications before it reads the ledger again anyway."""


@runtime_checkable
class LedgerNotifications(Protocol):
    """What a waiter needs: block until an execution finishes, or until there is new work."""

    def wait_for(self, execution_id: str, timeout: float) -> bool:
        """True once `execution_id` was announced finished (at once if it already was)."""
        ...

    def wait_for_work(self, timeout: float) -> bool:
        """True when new work is announced within `timeout` seconds."""
        ...


class NotificationHub:
    """Thread-safe `LedgerNotifications`, fed by whoever sees the changes.

    Remembers the latest `remember` finished ids, so an announcement that arrives before its
    waiter starts waiting is not missed.
    """

    def __init__(self, remember: int = 10_000) -> None:
        self._changed = threading.Condition()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._work = 0
        self._work_listeners: list[Callable[[], None]] = []

    def finished(self, execution_id: str) -> None:
        """Announce that `execution_id` reached a terminal status."""
        with self._changed:
            self._finished[execution_id] = None
            while len(self._finished) > self._remember:
                self._finished.popitem(last=False)
            self._changed.notify_all()

    def work_available(self) -> None:
        """Announce new claimable work; wakes waiters and calls every work listener."""
        with self._changed:
            self._work += 1
            self._changed.notify_all()
            listeners = list(self._work_listeners)
        for listener in listeners:
            listener()

    def on_work(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly, from the announcing thread) on every work announcement."""
        with self._changed:
            self._work_listeners.append(listener)

    def wait_for(self, execution_id: str, timeout: float) -> bool:
        """True once `execution_id` was announced finished (at once if it already was)."""
        with self._changed:
            return self._changed.wait_for(lambda: execution_id in self._finished, timeout)

    def wait_for_work(self, timeout: float) -> bool:
        """True when new work is announced within `timeout` seconds."""
        with self._changed:
            seen = self._work
            return self._changed.wait_for(lambda: self._work != seen, timeout)
