"""The operational snapshot behind /health/metrics and spine doctor, on a ledger with no worker."""

from __future__ import annotations

import time

import pytest

from spine_advanced.pg.ops import snapshot
from spine_core.execution import Lane, NewExecution
from spine_core.status import ExecutionStatus as S
from spine_intermediate.pg.ledger import PostgresLedgerStore

pytestmark = pytest.mark.postgres


def _snapshot(store, lease, grace=30.0):
    async def read():
        async with store.db.pool.acquire() as conn:
            return await snapshot(conn, lease_seconds=lease, grace=grace)

    return store.db.call(read())


def test_queue_depth_per_lane_oldest_wait_and_stuck_runs(advanced_pg_url):
    store = PostgresLedgerStore.open(advanced_pg_url, max_size=2)
    try:
        for lane in (Lane.NORMAL, Lane.NORMAL, Lane.BACKFILL):
            store.create_execution(NewExecution(name="wf", lane=lane, status=S.QUEUED))
        running = store.create_execution(NewExecution(name="wf", status=S.QUEUED))
        store.transition(running.id, S.RUNNING, worker_id="gone")
        time.sleep(0.2)
        fresh = _snapshot(store, lease=60.0)
        assert fresh.queue_depth == {"normal": 2, "backfill": 1, "slow": 0}
        assert fresh.by_status == {"queued": 3, "running": 1}
        assert fresh.oldest_queued_seconds >= 0.2 and fresh.live_workers == 0
        assert fresh.stuck == {"queued": 0, "running": 0, "cancelling": 0}
        assert fresh.dead_letters == 0
        late = _snapshot(store, lease=0.1, grace=0.1)
        assert late.stuck == {"queued": 3, "running": 1, "cancelling": 0}
        store.transition(running.id, S.CANCELLING)
        time.sleep(0.2)
        assert _snapshot(store, lease=60.0, grace=0.1).stuck["cancelling"] == 1
    finally:
        store.close()
