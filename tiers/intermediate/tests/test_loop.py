"""The sync-over-async bridge every PostgreSQL store call goes through."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spine_intermediate.pg.loop import AsyncBridge


@pytest.fixture
def bridge():
    b = AsyncBridge("test-loop")
    yield b
    b.close()


def test_results_and_errors_come_back_to_the_calling_thread(bridge):
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    async def boom():
        raise KeyError("missing")

    assert bridge.call(add(2, 3)) == 5
    with pytest.raises(KeyError, match="missing"):
        bridge.call(boom())


def test_many_threads_each_get_their_own_result(bridge):
    async def echo(n):
        await asyncio.sleep(0.001)
        return n

    got = {}

    def worker(k):
        got[k] = [bridge.call(echo((k, i))) for i in range(50)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {k: [(k, i) for i in range(50)] for k in range(6)}


def test_a_call_that_times_out_is_cancelled_on_the_loop(bridge):
    cancelled = threading.Event()

    async def forever():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        bridge.call(forever(), timeout=0.05)
    assert cancelled.wait(2)


def test_calls_after_close_and_from_the_loop_itself_are_refused(bridge):
    async def reenter():
        bridge.call(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="deadlock"):
        bridge.call(reenter())
    bridge.close()
    with pytest.raises(RuntimeError, match="closed"):
        bridge.call(asyncio.sleep(0))
