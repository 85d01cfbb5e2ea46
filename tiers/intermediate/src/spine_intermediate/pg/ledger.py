"""`PostgresLedgerStore`: core's `LedgerStore`, `RunHistoryStore` and `CheckpointStore`."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from spine_core.durable.state import Checkpoint, CheckpointRejected, RunState
from spine_core.errors import ConcurrencyConflict, ExecutionNotFound
from spine_core.events import STATUS_EVENTS, EventType, ExecutionEvent
from spine_core.execution import (
    Execution,
    ExecutionFilter,
    Lane,
    NewExecution,
    TriggerSource,
    utcnow,
)
from spine_core.ports import HistoryEntry, RunFinished, RunStarted, StepRunRecord
from spine_core.status import (
    ACTIVE_STATUSES,
    ALLOWED_TRANSITIONS,
    ExecutionStatus,
    check_transition,
    is_terminal,
)
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.pg.migrations import MIGRATIONS, require_current, schema_version

ACTIVE_LOGICAL_KEY_INDEX = "executions_active_logical_key"
"""The advanced tier's unique partial index: one active execution per logical_key."""
_ACTIVE = [status.value for status in ACTIVE_STATUSES]
_ACTIVE_HOLDER = "SELECT id FROM executions WHERE logical_key = $1 AND status = ANY($2::text[])"
_KEY_RACE_RETRIES = 3

EXECUTION_COLUMNS = (
    "id, name, params, status, lane, trigger_source, logical_key, parent_execution_id, backend, "
    "retry_count, created_at, updated_at, started_at, finished_at, error, error_category, result, "
    "worker_id, due_at"
)

# The execution row and its events in one statement: one round trip, atomic on its own. A row
# created queued gets `created` then `queued`, the same history as created-then-queued.
_CREATE = f"""
WITH created AS (
    INSERT INTO executions (id, name, params, status, lane, trigger_source, logical_key,
        parent_execution_id, backend, retry_count, created_at, updated_at, last_seq)
    VALUES ($1, $2, $3, $12, $4, $5, $6, $7, $8, $9, $10::timestamptz, $10::timestamptz,
        CASE WHEN $12 = 'queued' THEN 2 ELSE 1 END)
    RETURNING {EXECUTION_COLUMNS}
), event AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT created.id, e.seq, e.event_type, e.payload, NULL, created.created_at
    FROM created, (VALUES (1, 'created', $11::jsonb), (2, 'queued', '{{"attempt": 1}}'::jsonb))
        AS e (seq, event_type, payload)
    WHERE e.seq = 1 OR created.status = 'queued'
)
SELECT {EXECUTION_COLUMNS} FROM created
"""

# A status change and its event in one statement. The WHERE admits only the statuses core's
# state machine allows this move from; PostgreSQL re-checks it against the latest row version if
# another transaction changed the row meanwhile, and `last_seq + 1` is computed from that same
# version under the row lock, so racing writers can neither both move the row nor reuse a seq.
_SET_STATUS = """
    status = $2,
    updated_at = $3,
    started_at = CASE WHEN $4 THEN $3 ELSE started_at END,
    finished_at = CASE WHEN $5 THEN $3 ELSE finished_at END,
    error = CASE WHEN $2 = 'queued' THEN NULL ELSE COALESCE($6, error) END,
    error_category = CASE WHEN $2 = 'queued' THEN NULL ELSE COALESCE($7, error_category) END,
    result = COALESCE($8::jsonb, result),
    worker_id = CASE WHEN $4 THEN $9 ELSE worker_id END,
    heartbeat_at = CASE WHEN $4 THEN $3 ELSE heartbeat_at END,
    due_at = CASE WHEN $4 THEN NULL ELSE due_at END,
    last_seq = last_seq + 1
"""

# The event carries the attempt of the step at the cursor, as last checkpointed, unless the
# caller's payload names it (the runner does, for the moves it makes).
_APPEND_STATUS_EVENT = """
event AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq, $10,
        jsonb_build_object('attempt', COALESCE((run_state->>'attempt')::int, 1)) || $11::jsonb,
        NULL, $3
    FROM changed
)
"""

_TRANSITION = f"""
WITH changed AS (
    UPDATE executions SET {_SET_STATUS}
    WHERE id = $1 AND status = ANY($12::text[])
    RETURNING {EXECUTION_COLUMNS}, last_seq, run_state
), {_APPEND_STATUS_EVENT}
SELECT {EXECUTION_COLUMNS} FROM changed
"""


# A step's checkpoint: the run state and the step's event in one statement, only while the
# execution is advancing and held by the writer (a worker that lost its lease writes nothing).
_CHECKPOINT = f"""
WITH changed AS (
    UPDATE executions SET run_state = $2::jsonb, last_seq = last_seq + 1, due_at = $7
    WHERE id = $1 AND status IN ('running', 'cancelling')
        AND worker_id IS NOT DISTINCT FROM $3
    RETURNING {EXECUTION_COLUMNS}, last_seq
), event AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq, $4, $5::jsonb, NULL, $6 FROM changed
)
SELECT {EXECUTION_COLUMNS} FROM changed
"""


# A checkpoint that ends the run (or queues it again): state, the step's event, the status
# change and its event in one statement, so a one-step run still ends in one round trip.
_CHECKPOINT_AND_MOVE = f"""
WITH changed AS (
    UPDATE executions SET run_state = $2::jsonb, last_seq = last_seq + 2,
        status = $7, updated_at = $6,
        finished_at = CASE WHEN $8 THEN $6 ELSE finished_at END,
        error = CASE WHEN $7 = 'queued' THEN NULL ELSE COALESCE($9, error) END,
        error_category = CASE WHEN $7 = 'queued' THEN NULL
            ELSE COALESCE($10, error_category) END,
        result = COALESCE($11::jsonb, result), due_at = $12
    WHERE id = $1 AND status = ANY($13::text[]) AND worker_id IS NOT DISTINCT FROM $3
    RETURNING {EXECUTION_COLUMNS}, last_seq
), stage AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq - 1, $4, $5::jsonb, NULL, $6 FROM changed
), moved AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq, $14, $15::jsonb, NULL, $6 FROM changed
)
SELECT {EXECUTION_COLUMNS} FROM changed
"""

_ADVANCING = ("running", "cancelling")
_NOT_CLAIMED = object()


def _claim_sql(pick: str) -> str:
    """The move to running of the oldest queued row that `pick` admits and nobody holds.

    It returns the run state too: the claimer advances the execution next, and finds its state
    already here (`load_run_state`) instead of reading it again.
    """
    return f"""
WITH changed AS (
    UPDATE executions SET {_SET_STATUS}
    WHERE id = (
        SELECT id FROM executions WHERE status = 'queued' AND {pick}
            AND (due_at IS NULL OR due_at <= now())
        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
    ) AND status = 'queued'
    RETURNING {EXECUTION_COLUMNS}, last_seq, run_state
), {_APPEND_STATUS_EVENT}
SELECT {EXECUTION_COLUMNS}, run_state FROM changed
"""


# `$1` is the one execution to claim (NULL for any); `$12` the lanes to claim from.
_CLAIM_ONE = _claim_sql("id = $1")
_CLAIM_IN_LANES = _claim_sql("$1::text IS NULL AND lane = ANY($12::text[])")
_CLAIM_ANY = _claim_sql("$1::text IS NULL")

_SOURCES: dict[ExecutionStatus, list[str]] = {
    to: sorted(f.value for f, targets in ALLOWED_TRANSITIONS.items() if to in targets)
    for to in ExecutionStatus
}
"""For each status, the statuses core's state machine allows moving to it from."""


def _status_args(
    to: ExecutionStatus,
    error: str | None,
    error_category: str | None,
    result: Mapping[str, Any] | None,
    payload: Mapping[str, Any] | None,
    worker_id: str | None,
) -> tuple[Any, ...]:
    """Parameters $2..$11 of `_SET_STATUS` and `_APPEND_STATUS_EVENT`."""
    running = to is ExecutionStatus.RUNNING
    event_payload = dict(payload or {})
    if error:
        event_payload.setdefault("error", error)
    if running and worker_id:
        event_payload.setdefault("worker_id", worker_id)
    return (
        to.value,
        utcnow(),
        running,
        is_terminal(to),
        error,
        error_category,
        dict(result) if result is not None else None,
        worker_id,
        STATUS_EVENTS[to].value,
        event_payload,
    )


# Run rows and step rows go in through one statement; a run row arrives closed when its run
# ended in the same batch, and a re-run of the same run id restarts its row.
_INSERT_HISTORY = """
INSERT INTO workflow_runs (run_id, execution_id, workflow, version, step, kind, status,
    started_at, finished_at, duration_ms, error, category, params, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (run_id) WHERE step IS NULL DO UPDATE SET
    status = EXCLUDED.status, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms,
    error = EXCLUDED.error
"""

_CLOSE_RUN = """
UPDATE workflow_runs SET status = $2, error = $3, finished_at = $4,
    duration_ms = EXTRACT(EPOCH FROM ($4 - started_at)) * 1000
WHERE run_id = $1 AND step IS NULL
"""


def _history_rows(entries: Sequence[HistoryEntry]) -> tuple[list[tuple], list[tuple]]:
    """The batch as rows to insert, in order, and closes of runs opened by an earlier batch."""
    finished = {e.run_id: e for e in entries if isinstance(e, RunFinished)}
    opened = {e.run_id for e in entries if isinstance(e, RunStarted)}
    rows: list[tuple] = []
    for entry in entries:
        if isinstance(entry, RunStarted):
            end = finished.get(entry.run_id)
            rows.append(
                (
                    entry.run_id,
                    entry.execution_id,
                    entry.workflow,
                    entry.version,
                    None,
                    None,
                    end.status if end else "running",
                    entry.started_at,
                    end.finished_at if end else None,
                    (end.finished_at - entry.started_at).total_seconds() * 1000 if end else None,
                    end.error if end else None,
                    None,
                    dict(entry.params),
                    {},
                )
            )
        elif isinstance(entry, StepRunRecord):
            rows.append(
                (
                    entry.run_id,
                    entry.execution_id,
                    entry.workflow,
                    entry.version,
                    entry.step,
                    entry.kind,
                    entry.status,
                    entry.started_at,
                    entry.finished_at,
                    entry.duration_ms,
                    entry.error,
                    entry.category,
                    None,
                    _jsonable(entry.detail),
                )
            )
    closes = [
        (e.run_id, e.status, e.error, e.finished_at)
        for e in finished.values()
        if e.run_id not in opened
    ]
    return rows, closes


def execution_from_row(row: Mapping[str, Any]) -> Execution:
    """The `Execution` of a row selected with `EXECUTION_COLUMNS`."""
    return Execution(
        id=row["id"],
        name=row["name"],
        params=row["params"] or {},
        status=ExecutionStatus(row["status"]),
        lane=Lane(row["lane"]),
        trigger_source=TriggerSource(row["trigger_source"]),
        logical_key=row["logical_key"],
        parent_execution_id=row["parent_execution_id"],
        retry_count=row["retry_count"],
        backend=row["backend"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        error_category=row["error_category"],
        result=row["result"],
        worker_id=row["worker_id"],
        due_at=row["due_at"],
    )


def _event(row: Mapping[str, Any]) -> ExecutionEvent:
    return ExecutionEvent(
        row["execution_id"],
        row["seq"],
        EventType(row["event_type"]),
        row["created_at"],
        row["payload"] or {},
        row["dedupe_key"],
    )


def _step_record(row: Mapping[str, Any]) -> StepRunRecord:
    detail = dict(row["detail"] or {})
    if row["step"] is None and row["params"] is not None:
        detail.setdefault("params", row["params"])
    return StepRunRecord(
        run_id=row["run_id"],
        execution_id=row["execution_id"],
        workflow=row["workflow"],
        version=row["version"],
        step=row["step"],
        kind=row["kind"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        error=row["error"],
        category=row["category"],
        detail=detail,
    )


async def _append_event(
    conn: asyncpg.Connection,
    execution_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    dedupe_key: str | None,
    at: datetime,
) -> asyncpg.Record:
    """Append with the row's next seq; the caller holds the execution row lock."""
    return await conn.fetchrow(
        """
        WITH counted AS (
            UPDATE executions SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq
        )
        INSERT INTO execution_events
            (execution_id, seq, event_type, payload, dedupe_key, created_at)
        SELECT $1, last_seq, $2, $3, $4, $5 FROM counted
        RETURNING execution_id, seq, event_type, payload, dedupe_key, created_at
        """,
        execution_id,
        event_type,
        dict(payload),
        dedupe_key,
        at,
    )


class PostgresLedgerStore:
    """The execution ledger and run history in PostgreSQL.

    Synchronous methods, each a thin wrapper running an async implementation on the database's
    private loop (see `spine_intermediate.pg.loop`).
    """

    def __init__(self, db: PgDatabase, *, owns_db: bool = True, check_schema: bool = True) -> None:
        self.db = db
        self._owns_db = owns_db
        self._claimed_states: dict[str, Any] = {}
        """Run state returned by claims in this process, until the claimer loads it once."""
        self._claimed_lock = threading.Lock()
        if check_schema:
            self.db.call(self._require_current())

    @classmethod
    def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresLedgerStore:
        """Connect and check the schema is current."""
        db = PgDatabase.connect(url, min_size=min_size, max_size=max_size)
        try:
            return cls(db)
        except BaseException:
            db.close()
            raise

    async def _require_current(self) -> None:
        async with self.db.pool.acquire() as conn:
            await require_current(conn)

    # -- LedgerStore ------------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> Execution:
        """Insert the execution in `new.status` with its events in one statement."""
        return self.db.call(self._create_execution(new))

    async def _create_execution(self, new: NewExecution) -> Execution:
        # A logical key's holder can finish between our failed insert and the read naming it;
        # then the key is free and the insert is tried again (a bounded number of times).
        for _ in range(_KEY_RACE_RETRIES):
            try:
                return execution_from_row(await self._insert_execution(new))
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != ACTIVE_LOGICAL_KEY_INDEX or new.logical_key is None:
                    raise ValueError(f"execution {new.id} already exists") from None
                holder = await self.db.pool.fetchval(_ACTIVE_HOLDER, new.logical_key, _ACTIVE)
                if holder is not None:
                    raise ConcurrencyConflict(new.logical_key, holder) from None
        raise ConcurrencyConflict(new.logical_key or "", "(changing too fast to name)")

    async def _insert_execution(self, new: NewExecution) -> Any:
        return await self.db.pool.fetchrow(
            _CREATE,
            new.id,
            new.name,
            dict(new.params),
            new.lane.value,
            new.trigger_source.value,
            new.logical_key,
            new.parent_execution_id,
            new.backend,
            new.retry_count,
            utcnow(),
            {"name": new.name, "attempt": 1},
            new.status.value,
        )

    def get_execution(self, execution_id: str) -> Execution:
        """The execution, or `ExecutionNotFound`."""
        return self.db.call(self._get_execution(execution_id))

    async def _get_execution(self, execution_id: str) -> Execution:
        row = await self.db.pool.fetchrow(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1", execution_id
        )
        if row is None:
            raise ExecutionNotFound(execution_id)
        return execution_from_row(row)

    def list_executions(self, flt: ExecutionFilter) -> list[Execution]:
        """Newest first, filtered, at most `flt.limit`; `flt.before_id` pages."""
        return self.db.call(self._list_executions(flt))

    async def _list_executions(self, flt: ExecutionFilter) -> list[Execution]:
        where, args = [], []

        def add(clause: str, value: Any) -> None:
            args.append(value)
            where.append(clause.format(f"${len(args)}"))

        if flt.status is not None:
            add("status = {}", ExecutionStatus(flt.status).value)
        if flt.name:
            add("name = {}", flt.name)
        if flt.created_since is not None:
            add("created_at >= {}", flt.created_since)
        if flt.logical_key:
            add("logical_key = {}", flt.logical_key)
        if flt.parent_execution_id:
            add("parent_execution_id = {}", flt.parent_execution_id)
        if flt.before_id:
            add("id < {}", flt.before_id)
        args.append(max(0, flt.limit))
        sql = (
            f"SELECT {EXECUTION_COLUMNS} FROM executions"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY id DESC LIMIT ${len(args)}"
        )
        rows = await self.db.pool.fetch(sql, *args)
        return [execution_from_row(r) for r in rows]

    def transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        *,
        error: str | None = None,
        error_category: str | None = None,
        result: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> Execution:
        """Lock the row, check the move with core's state machine, update, append its event."""
        return self.db.call(
            self._transition(
                execution_id, ExecutionStatus(to), error, error_category, result, payload, worker_id
            )
        )

    async def _transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        error: str | None,
        error_category: str | None,
        result: Mapping[str, Any] | None,
        payload: Mapping[str, Any] | None,
        worker_id: str | None,
        conn: asyncpg.Connection | asyncpg.Pool | None = None,
    ) -> Execution:
        """Apply one status change with its event: one statement, atomic on its own.

        If no row moved, the row is read to say why: unknown id, or a move core's state machine
        forbids from the status it has now.
        """
        target = conn if conn is not None else self.db.pool
        args = _status_args(to, error, error_category, result, payload, worker_id)
        row = await target.fetchrow(_TRANSITION, execution_id, *args, _SOURCES[to])
        if row is not None:
            return execution_from_row(row)
        current = await target.fetchval("SELECT status FROM executions WHERE id = $1", execution_id)
        if current is None:
            raise ExecutionNotFound(execution_id)
        check_transition(current, to)
        # Legal from the status it has now: it changed between the two statements; try again.
        return await self._transition(
            execution_id, to, error, error_category, result, payload, worker_id, conn
        )

    def append_event(
        self,
        execution_id: str,
        event_type: EventType,
        payload: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> ExecutionEvent:
        """Append a non-status event; a repeated `dedupe_key` returns the first."""
        return self.db.call(
            self._append_event(execution_id, EventType(event_type), payload, dedupe_key)
        )

    async def _append_event(
        self,
        execution_id: str,
        event_type: EventType,
        payload: Mapping[str, Any] | None,
        dedupe_key: str | None,
    ) -> ExecutionEvent:
        async with self.db.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "SELECT 1 FROM executions WHERE id = $1 FOR UPDATE", execution_id
            )
            if found is None:
                raise ExecutionNotFound(execution_id)
            if dedupe_key is not None:
                existing = await conn.fetchrow(
                    "SELECT execution_id, seq, event_type, payload, dedupe_key, created_at "
                    "FROM execution_events WHERE execution_id = $1 AND dedupe_key = $2",
                    execution_id,
                    dedupe_key,
                )
                if existing is not None:
                    return _event(existing)
            row = await _append_event(
                conn, execution_id, event_type.value, payload or {}, dedupe_key, utcnow()
            )
        return _event(row)

    def list_events(self, execution_id: str) -> list[ExecutionEvent]:
        """An execution's events in `seq` order."""
        return self.db.call(self._list_events(execution_id))

    async def _list_events(self, execution_id: str) -> list[ExecutionEvent]:
        async with self.db.pool.acquire() as conn:
            found = await conn.fetchval("SELECT 1 FROM executions WHERE id = $1", execution_id)
            if found is None:
                raise ExecutionNotFound(execution_id)
            rows = await conn.fetch(
                "SELECT execution_id, seq, event_type, payload, dedupe_key, created_at "
                "FROM execution_events WHERE execution_id = $1 ORDER BY seq",
                execution_id,
            )
        return [_event(r) for r in rows]

    def claim_next(
        self, worker_id: str, *, lanes: tuple[Lane, ...] | None = None
    ) -> Execution | None:
        """Move the oldest queued execution to running (`FOR UPDATE SKIP LOCKED`)."""
        return self.db.call(self._claim(worker_id, lanes, None))

    def claim(self, execution_id: str, worker_id: str) -> Execution | None:
        """Claim one specific execution if it is still queued; None if someone else has it."""
        return self.db.call(self._claim(worker_id, None, execution_id))

    async def _claim(
        self, worker_id: str, lanes: tuple[Lane, ...] | None, execution_id: str | None
    ) -> Execution | None:
        args = _status_args(ExecutionStatus.RUNNING, None, None, None, None, worker_id)
        if execution_id is not None:
            row = await self.db.pool.fetchrow(_CLAIM_ONE, execution_id, *args)
        elif lanes:
            lane_names = [Lane(lane).value for lane in lanes]
            row = await self.db.pool.fetchrow(_CLAIM_IN_LANES, None, *args, lane_names)
        else:
            row = await self.db.pool.fetchrow(_CLAIM_ANY, None, *args)
        if row is None:
            return None
        with self._claimed_lock:
            self._claimed_states[row["id"]] = row["run_state"]
        return execution_from_row(row)

    # -- CheckpointStore ---------------------------------------------------------------------

    def load_run_state(self, execution_id: str) -> RunState | None:
        """The run state of the execution's last checkpoint (as its claim returned it)."""
        with self._claimed_lock:
            claimed = self._claimed_states.pop(execution_id, _NOT_CLAIMED)
        if claimed is not _NOT_CLAIMED:
            return None if claimed is None else RunState.from_json(claimed)
        return self.db.call(self._load_run_state(execution_id))

    async def _load_run_state(self, execution_id: str) -> RunState | None:
        row = await self.db.pool.fetchrow(
            "SELECT run_state FROM executions WHERE id = $1", execution_id
        )
        if row is None:
            raise ExecutionNotFound(execution_id)
        return None if row["run_state"] is None else RunState.from_json(row["run_state"])

    def save_checkpoint(self, execution_id: str, checkpoint: Checkpoint) -> Execution:
        """State and event in one statement; with the run's status move, one transaction."""
        state = checkpoint.state.to_dict()
        try:
            return self.db.call(self._save_checkpoint(execution_id, checkpoint, state))
        except (
            asyncpg.UntranslatableCharacterError,
            asyncpg.InvalidTextRepresentationError,
        ) as exc:
            raise ValueError(f"PostgreSQL cannot store this run state: {exc}") from None

    async def _save_checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, state: dict[str, Any]
    ) -> Execution:
        args = (
            execution_id,
            state,
            checkpoint.worker_id,
            checkpoint.event_type.value,
            dict(checkpoint.event_payload),
            utcnow(),
            checkpoint.finish.due_at if checkpoint.finish is not None else None,
        )
        move = checkpoint.finish
        if move is None:
            row = await self.db.pool.fetchrow(_CHECKPOINT, *args)
            if row is None:
                await self._reject(self.db.pool, execution_id, None)
            return execution_from_row(row)
        payload = dict(move.payload or {})
        if move.error:
            payload.setdefault("error", move.error)
        row = await self.db.pool.fetchrow(
            _CHECKPOINT_AND_MOVE,
            *args[:6],
            move.to.value,
            is_terminal(move.to),
            move.error,
            move.error_category,
            dict(move.result) if move.result is not None else None,
            move.due_at,
            [s for s in _SOURCES[move.to] if s in _ADVANCING],
            STATUS_EVENTS[move.to].value,
            payload,
        )
        if row is None:
            await self._reject(self.db.pool, execution_id, move.to)
        return execution_from_row(row)

    async def _reject(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        execution_id: str,
        to: ExecutionStatus | None,
    ) -> None:
        """Say why nothing was written: not advancing or not ours, else an illegal move."""
        row = await conn.fetchrow(
            "SELECT status, worker_id FROM executions WHERE id = $1", execution_id
        )
        if row is None:
            raise ExecutionNotFound(execution_id)
        if row["status"] not in _ADVANCING or to is None:
            raise CheckpointRejected(execution_id, row["status"])
        check_transition(row["status"], to)
        raise CheckpointRejected(execution_id, row["status"])

    def count_by_status(self) -> dict[str, int]:
        """How many executions are in each status."""
        return self.db.call(self._count_by_status())

    async def _count_by_status(self) -> dict[str, int]:
        rows = await self.db.pool.fetch(
            "SELECT status, count(*) AS n FROM executions GROUP BY status"
        )
        return {r["status"]: r["n"] for r in rows}

    def close(self) -> None:
        """Close the pool and the loop thread (if this store owns the database)."""
        if self._owns_db:
            self.db.close()

    # -- RunHistoryStore --------------------------------------------------------------------

    def record(self, entries: Sequence[HistoryEntry]) -> None:
        """Write the entries in order, in one transaction: one round trip for the batch."""
        if entries:
            self.db.call(self._record(entries))

    async def _record(self, entries: Sequence[HistoryEntry]) -> None:
        rows, closes = _history_rows(entries)
        async with self.db.pool.acquire() as conn:
            if not closes:
                # executemany is atomic on its own (one Sync): a short run costs one round trip.
                await conn.executemany(_INSERT_HISTORY, rows)
                return
            async with conn.transaction():
                if rows:
                    await conn.executemany(_INSERT_HISTORY, rows)
                await conn.executemany(_CLOSE_RUN, closes)

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[StepRunRecord]:
        """Run-level rows, newest first."""
        rows = self.db.call(
            self.db.pool.fetch(
                "SELECT * FROM workflow_runs WHERE step IS NULL "
                "AND ($1::text IS NULL OR workflow = $1) "
                "ORDER BY started_at DESC, id DESC LIMIT $2",
                workflow,
                limit,
            )
        )
        return [_step_record(r) for r in rows]

    def get_run(self, run_id: str) -> list[StepRunRecord]:
        """The run row followed by its step rows in the order they finished."""
        rows = self.db.call(
            self.db.pool.fetch(
                "SELECT * FROM workflow_runs WHERE run_id = $1 ORDER BY (step IS NOT NULL), id",
                run_id,
            )
        )
        return [_step_record(r) for r in rows]

    # -- workers and health -----------------------------------------------------------------

    def register_worker(self, worker_id: str, concurrency: int) -> None:
        """Record a worker process as started."""
        now = utcnow()
        self.db.call(
            self.db.pool.execute(
                """
            INSERT INTO workers (worker_id, hostname, pid, concurrency, started_at, heartbeat_at)
            VALUES ($1, $2, $3, $4, $5, $5)
            ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,
                stopped_at = NULL
            """,
                worker_id,
                socket.gethostname(),
                os.getpid(),
                concurrency,
                now,
            )
        )

    def heartbeat(self, worker_id: str, running_ids: list[str]) -> None:
        """A worker is alive; so are the executions it is running."""
        self.db.call(self._heartbeat(worker_id, running_ids))

    async def _heartbeat(self, worker_id: str, running_ids: list[str]) -> None:
        now = utcnow()
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                "UPDATE workers SET heartbeat_at = $2 WHERE worker_id = $1", worker_id, now
            )
            if running_ids:
                await conn.execute(
                    "UPDATE executions SET heartbeat_at = $2 WHERE id = ANY($1::text[]) "
                    "AND status = 'running'",
                    running_ids,
                    now,
                )

    def requeue_stale(self, lease_seconds: float) -> list[str]:
        """Hand back `running` executions whose worker stopped heartbeating (killed workers).

        Each moves running -> queued with its `queued` event (reason: lease expired), under the
        row lock, so a live worker finishing at the same moment either wins or sees the change.
        """
        return self.db.call(self._requeue_stale(lease_seconds))

    async def _requeue_stale(self, lease_seconds: float) -> list[str]:
        stale = await self.db.pool.fetch(
            "SELECT id FROM executions WHERE status = 'running' "
            "AND COALESCE(heartbeat_at, started_at, updated_at) "
            "< now() - make_interval(secs => $1)",
            float(lease_seconds),
        )
        done = []
        for row in stale:
            async with self.db.pool.acquire() as conn, conn.transaction():
                current = await conn.fetchrow(
                    "SELECT status, heartbeat_at, started_at, updated_at, worker_id "
                    "FROM executions WHERE id = $1 FOR UPDATE",
                    row["id"],
                )
                seen = current["heartbeat_at"] or current["started_at"] or current["updated_at"]
                if (
                    current["status"] != "running"
                    or (utcnow() - seen).total_seconds() < lease_seconds
                ):
                    continue
                await self._transition(
                    row["id"],
                    ExecutionStatus.QUEUED,
                    None,
                    None,
                    None,
                    {
                        "reason": "lease expired: worker stopped heartbeating",
                        "previous_worker_id": current["worker_id"],
                    },
                    None,
                    conn,
                )
                done.append(row["id"])
        return done

    def worker_stopped(self, worker_id: str) -> None:
        """Record a clean worker shutdown."""
        self.db.call(
            self.db.pool.execute(
                "UPDATE workers SET stopped_at = $2 WHERE worker_id = $1", worker_id, utcnow()
            )
        )

    def last_worker_heartbeat(self) -> datetime | None:
        """When any running worker was last seen."""
        return self.db.call(
            self.db.pool.fetchval("SELECT max(heartbeat_at) FROM workers WHERE stopped_at IS NULL")
        )

    def schema_status(self) -> tuple[int, int]:
        """(applied migration, migrations the code knows)."""
        return self.db.call(self._schema_status())

    async def _schema_status(self) -> tuple[int, int]:
        async with self.db.pool.acquire() as conn:
            return await schema_version(conn), len(MIGRATIONS)

    def schema_version(self) -> int:
        """The applied migration version."""
        return self.schema_status()[0]

    def table_counts(self) -> dict[str, int]:
        """Row count of each ledger table."""
        sql = " UNION ALL ".join(
            f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in LEDGER_TABLES
        )
        rows = self.db.call(self.db.pool.fetch(sql))
        return {r["t"]: r["n"] for r in rows}

    def ping(self) -> None:
        """A round trip to the database."""
        self.db.call(self.db.pool.fetchval("SELECT 1"))


LEDGER_TABLES = ("_migrations", "executions", "execution_events", "workflow_runs", "workers")


def _jsonable(value: Any) -> Any:
    """Best-effort JSON-safe copy (step outputs are JSON already; dates in detail are not)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
