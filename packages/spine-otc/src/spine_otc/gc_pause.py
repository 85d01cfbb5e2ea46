"""Pause Python's cyclic garbage collector while a bulk load allocates millions of tuples.

A million-row load makes several tuples and strings per row, none of them in a reference
cycle: reference counting frees every one. The cyclic collector still runs every few hundred
allocations and walks the young objects each time, which measured a fifth of normalize's
time (1M rows on SQLite: 19.2 s with it, 15.4 s paused; fetch, unzip and tuple building
gained the most). The pause is process-wide, so it is counted: overlapping loads in several
threads keep it until the last one ends, and the collector comes back only if it was on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector off inside the block (reference counting still frees)."""
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()
