"""What an operator asks of the ledger: queue depth, live workers, stuck executions, dead letters.

One snapshot, read in one transaction, serves `GET /health/metrics` and `spine doctor`, so
both always agree on what "stuck" and "live" mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from spine_core.execution import Lane

_STUCK = """
SELECT
    count(*) FILTER (WHERE status = 'queued'
        AND GREATEST(updated_at, due_at) < now() - make_interval(secs => $1)) AS queued,
    count(*) FILTER (WHERE status = 'running'
        AND COALESCE(heartbeat_at, started_at, updated_at)
            < now() - make_interval(secs => $1)) AS running,
    count(*) FILTER (WHERE status = 'cancelling'
        AND updated_at < now() - make_interval(secs => $2)) AS cancelling
FROM executions WHERE status IN ('queued', 'running', 'cancelling')
"""

# Claimable since: when it was queued, or when it became due if that was later.
_OLDEST_QUEUED = """
SELECT EXTRACT(EPOCH FROM now() - min(GREATEST(updated_at, due_at)))
FROM executions WHERE status = 'queued' AND (due_at IS NULL OR due_at <= now())
"""

_LIVE_WORKERS = """
SELECT count(*) FROM workers
WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $1)
"""


@dataclass(frozen=True)
class Snapshot:
    """The ledger's operational state at one moment."""

    by_status: dict[str, int]
    queue_depth: dict[str, int]
    """Queued executions per lane (every lane named, zeros included)."""
    dead_letters: int
    """Open dead letters (neither retried nor discarded)."""
    live_workers: int
    """Worker processes that heartbeat within the lease."""
    oldest_queued_seconds: float | None
    """How long the longest-waiting claimable execution has waited; None when none waits."""
    stuck: dict[str, int] = field(default_factory=dict)
    """queued: claimable for longer than the lease; running: lease expired (the reaper has not
    handed it back); cancelling: longer than the grace period."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `GET /health/metrics`."""
        return {
            "executions_by_status": self.by_status,
            "queue_depth": self.queue_depth,
            "dead_letters": self.dead_letters,
            "live_workers": self.live_workers,
            "oldest_queued_seconds": self.oldest_queued_seconds,
            "stuck": self.stuck,
        }


async def snapshot(conn: asyncpg.Connection, *, lease_seconds: float, grace: float) -> Snapshot:
    """Read everything in one repeatable-read transaction (a consistent picture)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        statuses = await conn.fetch("SELECT status, count(*) AS n FROM executions GROUP BY status")
        lanes = await conn.fetch(
            "SELECT lane, count(*) AS n FROM executions WHERE status = 'queued' GROUP BY lane"
        )
        letters = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE retried_as IS NULL AND discarded_at IS NULL"
        )
        workers = await conn.fetchval(_LIVE_WORKERS, float(lease_seconds))
        oldest = await conn.fetchval(_OLDEST_QUEUED)
        stuck = await conn.fetchrow(_STUCK, float(lease_seconds), float(grace))
    depth = {lane.value: 0 for lane in Lane}
    depth.update({r["lane"]: r["n"] for r in lanes})
    return Snapshot(
        by_status={r["status"]: r["n"] for r in statuses},
        queue_depth=depth,
        dead_letters=letters,
        live_workers=workers,
        oldest_queued_seconds=None if oldest is None else round(float(oldest), 3),
        stuck=dict(stuck),
    )
