"""The sync-over-async bridge: one private event loop in a daemon thread per database.

Core's store interfaces are synchronous (every caller is a thread); asyncpg is asynchronous.
Each `AsyncBridge` owns an event loop running in its own daemon thread, and `call` hands a
coroutine to it and blocks for the result. Every store method is a thin synchronous wrapper
over an async implementation run through this bridge, so the hop is on every ledger write: it
is kept to one `call_soon_threadsafe` there and one lock release back (`asyncio`'s
`run_coroutine_threadsafe` adds a `concurrent.futures.Future`, whose Python-level condition
variable cost a fifth of the loop thread's time in `bench/`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Coroutine
from typing import TypeVar

T = TypeVar("T")
CANCEL_WAIT = 10.0
"""Seconds an interrupted call waits for its cancelled work to stop."""


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class _Pending:
    """One call in flight: the caller blocks on `done` until the loop fills it in."""

    __slots__ = ("done", "error", "result", "task")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.result: object = None
        self.error: BaseException | None = None
        self.task: asyncio.Task | None = None

    def settle(self, task: asyncio.Task) -> None:
        """Done callback, on the loop: record the outcome and wake the caller."""
        if task.cancelled():
            self.error = asyncio.CancelledError()
        else:
            self.error = task.exception()
            if self.error is None:
                self.result = task.result()
        self.done.release()


class AsyncBridge:
    """Runs coroutines on a private event loop and returns their results to the calling thread."""

    def __init__(self, name: str = "spine-pg-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        self._closed = False

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop (for code that must schedule on it directly)."""
        return self._loop

    def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run `awaitable` on the bridge's loop and block until it returns or raises."""
        coro = awaitable if asyncio.iscoroutine(awaitable) else _await(awaitable)
        if self._closed:
            coro.close()
            raise RuntimeError("the database connection is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("AsyncBridge.call from the bridge's own loop would deadlock")
        pending = _Pending()
        self._loop.call_soon_threadsafe(self._start, coro, pending)
        try:
            acquired = pending.done.acquire(timeout=-1 if timeout is None else timeout)
        except BaseException:
            # Ctrl-C in the caller: stop the work too, so its connection is idle again and the
            # caller's rollback can run, instead of failing with "another operation is in
            # progress" and hiding the interrupt.
            self._loop.call_soon_threadsafe(self._cancel, pending)
            pending.done.acquire(timeout=CANCEL_WAIT)
            raise
        if not acquired:
            self._loop.call_soon_threadsafe(self._cancel, pending)
            raise TimeoutError(f"no result within {timeout} s")
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _start(self, coro: Coroutine[object, object, object], pending: _Pending) -> None:
        pending.task = self._loop.create_task(coro)
        pending.task.add_done_callback(pending.settle)

    @staticmethod
    def _cancel(pending: _Pending) -> None:
        if pending.task is not None:
            pending.task.cancel()

    def close(self) -> None:
        """Stop the loop and join its thread; pending calls are cancelled."""
        if self._closed:
            return
        self._closed = True

        async def _cancel_rest() -> None:
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()

        with contextlib.suppress(Exception):  # best effort on shutdown
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
