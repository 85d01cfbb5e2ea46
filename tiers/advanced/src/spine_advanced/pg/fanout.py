"""`PostgresFanOut`: core's `FanOutStore` on the executions table.

Every decision about a parent is taken under its row lock (`SELECT ... FOR UPDATE`), so that
siblings ending at the same moment are counted one after another: none starts a slot another
already took, and the last one always sees itself last. A child that ends while its parent is
running (counting its children) leaves `due_at` set on the parent's row, which a claim clears;
the parent's next wait then ends at once instead of sleeping through that wake-up.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from spine_core.durable.children import ChildNews, ChildWait, FanOut, wake_decision
from spine_core.durable.state import CheckpointRejected
from spine_core.errors import ExecutionNotFound
from spine_core.execution import Execution, utcnow
from spine_core.status import ExecutionStatus
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.pg.ledger import EXECUTION_COLUMNS, execution_from_row

_CREATE_CHILDREN = """
WITH created AS (
    INSERT INTO executions (id, name, params, status, lane, trigger_source, logical_key,
        parent_execution_id, backend, retry_count, created_at, updated_at, last_seq)
    SELECT u.id, u.name, u.params::jsonb, 'pending', u.lane, u.trigger_source, NULL, $1,
        u.backend, 0, $2, $2, 1
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
        AS u (id, name, params, lane, trigger_source, backend)
    RETURNING id, name, created_at
)
INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
SELECT id, 1, 'created', jsonb_build_object('name', name, 'attempt', 1), NULL, created_at
FROM created
"""

_MOVE_EVENT = """
event AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq, $3::text,
        jsonb_build_object('attempt', COALESCE((run_state->>'attempt')::int, 1)) || $4::jsonb,
        NULL, $2::timestamptz
    FROM changed
)
"""

# The parent goes back to the queue; due at once if its children call for it ($5) or a child
# woke it while it ran (due_at set, see the module docstring), else at the recheck ($6).
_PARENT_WAITS = f"""
WITH changed AS (
    UPDATE executions SET status = 'queued', updated_at = $2::timestamptz, error = NULL,
        error_category = NULL, run_state = $7::jsonb, last_seq = last_seq + 1,
        due_at = CASE WHEN $5::boolean OR due_at IS NOT NULL THEN $2::timestamptz
            ELSE $6::timestamptz END
    WHERE id = $1
    RETURNING {EXECUTION_COLUMNS}, last_seq, run_state
), {_MOVE_EVENT}
SELECT {EXECUTION_COLUMNS} FROM changed
"""

_RELEASE = f"""
WITH changed AS (
    UPDATE executions SET status = 'queued', updated_at = $2::timestamptz,
        last_seq = last_seq + 1
    WHERE id IN (
        SELECT id FROM executions WHERE parent_execution_id = $1 AND status = 'pending'
        ORDER BY id LIMIT $5 FOR UPDATE
    )
    RETURNING {EXECUTION_COLUMNS}, last_seq, run_state
), {_MOVE_EVENT}
SELECT {EXECUTION_COLUMNS} FROM changed ORDER BY id
"""

_STOP_CHILDREN = f"""
WITH changed AS (
    UPDATE executions SET status = $5::text, updated_at = $2::timestamptz,
        last_seq = last_seq + 1,
        finished_at = CASE WHEN $5::text = 'cancelled' THEN $2::timestamptz ELSE finished_at END
    WHERE parent_execution_id = $1 AND status = ANY($6::text[])
    RETURNING {EXECUTION_COLUMNS}, last_seq, run_state
), {_MOVE_EVENT}
SELECT {EXECUTION_COLUMNS} FROM changed ORDER BY id
"""

_WAKE = f"""
UPDATE executions SET due_at = $2 WHERE id = $1 RETURNING {EXECUTION_COLUMNS}
"""

_CHILD_COUNTS = (
    "SELECT status, count(*) AS n FROM executions WHERE parent_execution_id = $1 AND id >= $2 "
    "GROUP BY status"
)


class PostgresFanOut:
    """Children and waiting parents, each move one transaction with its events."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db

    def await_children(self, parent_id: str, wait: ChildWait) -> tuple[Execution, list[Execution]]:
        """Lock the parent, create and start children, queue the parent: one transaction."""
        return self.db.call(self._await_children(parent_id, wait))

    async def _await_children(
        self, parent_id: str, wait: ChildWait
    ) -> tuple[Execution, list[Execution]]:
        assert wait.state.fanout is not None
        fanout = FanOut.from_dict(wait.state.fanout)
        now = utcnow()
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1 FOR UPDATE", parent_id
            )
            if row is None:
                raise ExecutionNotFound(parent_id)
            parent = execution_from_row(row)
            holding = parent.status in (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)
            if not holding or parent.worker_id != wait.worker_id:
                raise CheckpointRejected(parent_id, parent.status.value)
            if parent.status is ExecutionStatus.CANCELLING:
                return parent, []
            if wait.children:
                await conn.execute(_CREATE_CHILDREN, parent_id, now, *_columns(wait))
            wake, _ = wake_decision(await _counts(conn, parent_id, fanout), fanout)
            moved = await conn.fetchrow(
                _PARENT_WAITS,
                parent_id,
                now,
                "queued",
                dict(wait.payload),
                wake,
                wait.recheck_at,
                wait.state.to_dict(),
            )
            released = await self._release(conn, parent_id, wait.release, now)
        return execution_from_row(moved), released

    def child_finished(self, child_id: str) -> ChildNews:
        """Under the parent's lock: start siblings; wake the parent if `wake_decision` says so.

        A woken parent is announced as new work, since its status does not change.
        """
        return self.db.call(self._child_finished(child_id))

    async def _child_finished(self, child_id: str) -> ChildNews:
        now = utcnow()
        async with self.db.pool.acquire() as conn, conn.transaction():
            parent_id = await conn.fetchval(
                "SELECT parent_execution_id FROM executions WHERE id = $1", child_id
            )
            if parent_id is None:
                return ChildNews()
            parent = await conn.fetchrow(
                "SELECT status, lane, run_state->'fanout' AS fanout FROM executions "
                "WHERE id = $1 FOR UPDATE",
                parent_id,
            )
            if parent is None or parent["fanout"] is None:
                return ChildNews()
            if parent["status"] not in ("queued", "running"):
                return ChildNews()
            fanout = FanOut.from_dict(_json(parent["fanout"]))
            wake, release = wake_decision(await _counts(conn, parent_id, fanout), fanout)
            released = await self._release(conn, parent_id, release, now)
            if not wake:
                return ChildNews(None, released)
            woken = execution_from_row(await conn.fetchrow(_WAKE, parent_id, now))
            if woken.status is ExecutionStatus.QUEUED:
                await conn.execute("SELECT pg_notify('spine_work', $1)", parent["lane"])
                return ChildNews(woken, released)
        return ChildNews(None, released)

    async def _release(
        self, conn: asyncpg.Connection, parent_id: str, count: int, now: Any
    ) -> list[Execution]:
        if count <= 0:
            return []
        rows = await conn.fetch(_RELEASE, parent_id, now, "queued", {}, count)
        return [execution_from_row(r) for r in rows]

    def list_children(self, parent_id: str) -> list[Execution]:
        """Every child, oldest (first item) first."""
        return self.db.call(self._list_children(parent_id))

    async def _list_children(self, parent_id: str) -> list[Execution]:
        rows = await self.db.pool.fetch(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE parent_execution_id = $1 "
            "ORDER BY id",
            parent_id,
        )
        return [execution_from_row(r) for r in rows]

    def cancel_children(self, parent_id: str) -> list[Execution]:
        """Pending and queued children cancelled, running ones asked to stop; one transaction."""
        return self.db.call(self._cancel_children(parent_id))

    async def _cancel_children(self, parent_id: str) -> list[Execution]:
        now = utcnow()
        payload = {"reason": "parent stopped"}
        async with self.db.pool.acquire() as conn, conn.transaction():
            cancelled = await conn.fetch(
                _STOP_CHILDREN,
                parent_id,
                now,
                "cancelled",
                payload,
                "cancelled",
                ["pending", "queued"],
            )
            stopping = await conn.fetch(
                _STOP_CHILDREN,
                parent_id,
                now,
                "cancel_requested",
                payload,
                "cancelling",
                ["running"],
            )
        return sorted((execution_from_row(r) for r in (*cancelled, *stopping)), key=_id)


def _id(execution: Execution) -> str:
    return execution.id


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _columns(wait: ChildWait) -> tuple[list[str], ...]:
    """The new children as the column arrays `_CREATE_CHILDREN` unnests."""
    children = wait.children
    return (
        [c.id for c in children],
        [c.name for c in children],
        [json.dumps(dict(c.params), allow_nan=False) for c in children],
        [c.lane.value for c in children],
        [c.trigger_source.value for c in children],
        [c.backend for c in children],
    )


async def _counts(conn: asyncpg.Connection, parent_id: str, fanout: FanOut) -> dict[str, int]:
    """Children of the current round by status (see `FanOut.first_child`)."""
    rows = await conn.fetch(_CHILD_COUNTS, parent_id, fanout.first_child)
    return {r["status"]: r["n"] for r in rows}
