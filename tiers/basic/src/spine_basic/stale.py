"""Runs left `running` by a `spine` process that is gone, and how to end them.

The basic tier has no workers and no leases: a run lives inside the `spine` process that
started it. Its ledger row records that process as `pid:<pid>@<host>`; once no process with
that pid runs on this host the row can never finish by itself. (A pid the system has since
reused for another process hides a stale run until that process ends.)
"""

from __future__ import annotations

import os
import socket

from spine_core.errors import ErrorCategory
from spine_core.execution import Execution, ExecutionFilter
from spine_core.ports import LedgerStore
from spine_core.status import ExecutionStatus

INTERRUPTED = "interrupted"
"""The error of a run ended by Ctrl-C or SIGTERM."""
STALE = "interrupted: its spine process (pid {pid}) ended without finishing it"
"""The error of a stale run ended by `spine status --end-stale`."""
MAX_RUNNING = 1000
"""The most running executions one check looks at."""


def this_process() -> str:
    """`pid:<pid>@<host>`: the owner recorded on the runs this process starts."""
    return f"pid:{os.getpid()}@{socket.gethostname()}"


def owner_pid(worker_id: str | None) -> int | None:
    """The pid of a `pid:<pid>@<host>` owner on this host; None for any other owner."""
    if not worker_id or not worker_id.startswith("pid:"):
        return None
    pid, _, host = worker_id[4:].partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _running(store: LedgerStore) -> list[Execution]:
    flt = ExecutionFilter(status=ExecutionStatus.RUNNING, limit=MAX_RUNNING)
    return store.list_executions(flt)


def stale_executions(store: LedgerStore) -> list[Execution]:
    """Running executions whose owning process on this host no longer exists."""
    return [
        e
        for e in _running(store)
        if (pid := owner_pid(e.worker_id)) is not None and not _alive(pid)
    ]


def end_stale(store: LedgerStore) -> list[Execution]:
    """Fail every stale execution (INFRASTRUCTURE); the ones ended."""
    return [
        store.transition(
            e.id,
            ExecutionStatus.FAILED,
            error=STALE.format(pid=owner_pid(e.worker_id)),
            error_category=ErrorCategory.INFRASTRUCTURE,
        )
        for e in stale_executions(store)
    ]


def end_interrupted(store: LedgerStore, owner: str | None = None) -> list[Execution]:
    """Fail `owner`'s running executions as CANCELLED, "interrupted"; the ones ended.

    `owner` is this process by default; a backend's threads own runs as `<owner>/<n>`.
    """
    me = owner or this_process()
    return [
        store.transition(
            e.id,
            ExecutionStatus.FAILED,
            error=INTERRUPTED,
            error_category=ErrorCategory.CANCELLED,
        )
        for e in _running(store)
        if e.worker_id is not None and (e.worker_id == me or e.worker_id.startswith(f"{me}/"))
    ]
