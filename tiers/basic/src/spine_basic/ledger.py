"""The execution ledger in SQLite: core's `LedgerStore` over `executions` and `execution_events`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spine_basic.database import SqliteDatabase, from_db_time, to_db_time
from spine_basic.migrations import check_schema, schema_version
from spine_basic.stale import this_process
from spine_core.errors import ExecutionNotFound
from spine_core.events import STATUS_EVENTS, EventType, ExecutionEvent
from spine_core.execution import (
    Execution,
    ExecutionFilter,
    Lane,
    NewExecution,
    TriggerSource,
    utcnow,
)
from spine_core.status import ExecutionStatus, check_transition, is_terminal

_COLUMNS = (
    "id, name, params, status, lane, trigger_source, logical_key, parent_execution_id, "
    "retry_count, backend, created_at, updated_at, started_at, finished_at, error, "
    "error_category, result, worker_id"
)


_INSERT_EXECUTION = (
    f"INSERT INTO executions ({_COLUMNS}) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL)"
)
_SELECT_EXECUTION = f"SELECT {_COLUMNS} FROM executions WHERE id = ?"
# One constant statement for every transition, so sqlite3 reuses its prepared statement.
_UPDATE_STATUS = f"""
UPDATE executions SET
    status = :status,
    updated_at = :now,
    started_at = CASE WHEN :running THEN :now ELSE started_at END,
    worker_id = CASE WHEN :running THEN :worker_id ELSE worker_id END,
    finished_at = CASE WHEN :terminal THEN :now ELSE finished_at END,
    error = CASE WHEN :status = 'queued' THEN NULL ELSE COALESCE(:error, error) END,
    error_category = CASE WHEN :status = 'queued' THEN NULL
        ELSE COALESCE(:error_category, error_category) END,
    result = COALESCE(:result, result)
WHERE id = :id
RETURNING {_COLUMNS}
"""
# seq = max + 1 in the same statement (the (execution_id, seq) primary key makes it an index
# lookup); the caller holds SQLite's write lock, so nobody else appends in between.
_INSERT_EVENT = (
    "INSERT INTO execution_events "
    "(execution_id, seq, event_type, created_at, payload, dedupe_key) "
    "VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_events WHERE execution_id = ?1), "
    "?2, ?3, ?4, ?5) RETURNING seq"
)
_EXISTS = "SELECT 1 FROM executions WHERE id = ?"


def _row_to_execution(row: tuple) -> Execution:
    (
        id_,
        name,
        params,
        status,
        lane,
        trigger,
        logical_key,
        parent,
        retry_count,
        backend,
        created_at,
        updated_at,
        started_at,
        finished_at,
        error,
        category,
        result,
        worker_id,
    ) = row
    return Execution(
        id=id_,
        name=name,
        params=json.loads(params) if params else {},
        status=ExecutionStatus(status),
        lane=Lane(lane),
        trigger_source=TriggerSource(trigger),
        logical_key=logical_key,
        parent_execution_id=parent,
        retry_count=retry_count,
        backend=backend,
        created_at=from_db_time(created_at),  # type: ignore[arg-type]
        updated_at=from_db_time(updated_at),  # type: ignore[arg-type]
        started_at=from_db_time(started_at),
        finished_at=from_db_time(finished_at),
        error=error,
        error_category=category,
        result=json.loads(result) if result is not None else None,
        worker_id=worker_id,
    )


def _row_to_event(row: tuple) -> ExecutionEvent:
    execution_id, seq, event_type, created_at, payload, dedupe_key = row
    return ExecutionEvent(
        execution_id,
        seq,
        EventType(event_type),
        from_db_time(created_at),  # type: ignore[arg-type]
        json.loads(payload) if payload else {},
        dedupe_key,
    )


class SqliteLedgerStore:
    """Core's `LedgerStore` in one SQLite file; safe to share between threads.

    Every status change is one `BEGIN IMMEDIATE` transaction: read the status, check it with
    core's state machine, update the row and append the event with `seq = max(seq) + 1`.
    Opening refuses a database whose schema is behind (`run spine db init`).
    """

    def __init__(self, path: str | Path, *, database: SqliteDatabase | None = None) -> None:
        self.database = database or SqliteDatabase(path)
        self._owns_database = database is None
        try:
            check_schema(self.database.conn, where=str(self.database.path))
        except BaseException:
            if database is None:
                self.database.close()
            raise

    @property
    def path(self) -> Path:
        """The database file."""
        return self.database.path

    # -- executions ---------------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> Execution:
        """Insert the execution in `new.status` with its events in one transaction."""
        now = to_db_time(utcnow())
        params = json.dumps(dict(new.params))
        lane = Lane(new.lane)
        trigger = TriggerSource(new.trigger_source)
        try:
            with self.database.transaction() as conn:
                conn.execute(
                    _INSERT_EXECUTION,
                    (
                        new.id,
                        new.name,
                        params,
                        new.status.value,
                        lane.value,
                        trigger.value,
                        new.logical_key,
                        new.parent_execution_id,
                        new.retry_count,
                        new.backend,
                        now,
                        now,
                    ),
                )
                self._insert_event(
                    conn, new.id, EventType.CREATED, {"name": new.name, "attempt": 1}, None, now
                )
                if new.status is ExecutionStatus.QUEUED:
                    self._insert_event(conn, new.id, EventType.QUEUED, {"attempt": 1}, None, now)
        except sqlite3.IntegrityError as exc:
            if "executions.id" in str(exc):
                raise ValueError(f"execution {new.id} already exists") from None
            raise
        # Exactly the row just written, built here instead of read back.
        created_at = from_db_time(now)
        return Execution(
            id=new.id,
            name=new.name,
            params=json.loads(params),
            status=new.status,
            lane=lane,
            trigger_source=trigger,
            logical_key=new.logical_key,
            parent_execution_id=new.parent_execution_id,
            retry_count=new.retry_count,
            backend=new.backend,
            created_at=created_at,  # type: ignore[arg-type]
            updated_at=created_at,  # type: ignore[arg-type]
        )

    def get_execution(self, execution_id: str) -> Execution:
        """The execution, or `ExecutionNotFound`."""
        with self.database.lock:
            return self._get(self.database.conn, execution_id)

    def _get(self, conn: sqlite3.Connection, execution_id: str) -> Execution:
        row = conn.execute(_SELECT_EXECUTION, (execution_id,)).fetchone()
        if row is None:
            raise ExecutionNotFound(execution_id)
        return _row_to_execution(row)

    def _require(self, conn: sqlite3.Connection, execution_id: str) -> None:
        """`ExecutionNotFound` unless the execution exists (no row read, no JSON parsed)."""
        if conn.execute(_EXISTS, (execution_id,)).fetchone() is None:
            raise ExecutionNotFound(execution_id)

    def list_executions(self, flt: ExecutionFilter) -> list[Execution]:
        """Newest first, filtered, at most `flt.limit`; `flt.before_id` pages."""
        where: list[str] = []
        args: list[Any] = []
        if flt.status is not None:
            where.append("status = ?")
            args.append(ExecutionStatus(flt.status).value)
        if flt.name:
            where.append("name = ?")
            args.append(flt.name)
        if flt.created_since is not None:
            where.append("created_at >= ?")
            args.append(to_db_time(flt.created_since))
        if flt.logical_key:
            where.append("logical_key = ?")
            args.append(flt.logical_key)
        if flt.parent_execution_id:
            where.append("parent_execution_id = ?")
            args.append(flt.parent_execution_id)
        if flt.before_id:
            where.append("id < ?")
            args.append(flt.before_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        args.append(max(0, int(flt.limit)))
        with self.database.lock:
            rows = self.database.conn.execute(
                f"SELECT {_COLUMNS} FROM executions {clause} ORDER BY id DESC LIMIT ?", args
            ).fetchall()
        return [_row_to_execution(r) for r in rows]

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
        """Change status and append its event atomically; `IllegalTransition` otherwise."""
        with self.database.transaction() as conn:
            return self._transition(
                conn,
                execution_id,
                ExecutionStatus(to),
                error=error,
                error_category=error_category,
                result=result,
                payload=payload,
                worker_id=worker_id,
            )

    def _transition(
        self,
        conn: sqlite3.Connection,
        execution_id: str,
        to: ExecutionStatus,
        *,
        error: str | None,
        error_category: str | None,
        result: Mapping[str, Any] | None,
        payload: Mapping[str, Any] | None,
        worker_id: str | None,
        current: ExecutionStatus | str | None = None,
    ) -> Execution:
        """The caller holds the write lock; `current` is the status it already read under it."""
        if current is None:
            row = conn.execute(
                "SELECT status FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is None:
                raise ExecutionNotFound(execution_id)
            current = row[0]
        check_transition(ExecutionStatus(current), to)
        now = to_db_time(utcnow())
        rows = conn.execute(
            _UPDATE_STATUS,
            {
                "id": execution_id,
                "status": to.value,
                "now": now,
                "running": to is ExecutionStatus.RUNNING,
                # A run without a worker belongs to this process: `spine_basic.stale` finds it
                # if the process dies before finishing it.
                "worker_id": worker_id if worker_id is not None else this_process(),
                "terminal": is_terminal(to),
                "error": error,
                "error_category": None if error_category is None else str(error_category),
                "result": None if result is None else json.dumps(dict(result), default=str),
            },
        ).fetchall()
        event_payload = dict(payload or {})
        if error:
            event_payload.setdefault("error", error)
        # Basic keeps no run state to count from, and has no retries or resume: attempt 1
        # unless the runner names it.
        event_payload.setdefault("attempt", 1)
        self._insert_event(conn, execution_id, STATUS_EVENTS[to], event_payload, None, now)
        return _row_to_execution(rows[0])

    # -- events -------------------------------------------------------------------------------

    def _insert_event(
        self,
        conn: sqlite3.Connection,
        execution_id: str,
        event_type: EventType,
        payload: Mapping[str, Any],
        dedupe_key: str | None,
        created_at: str,
    ) -> ExecutionEvent:
        body = json.dumps(dict(payload), default=str)
        seq = conn.execute(
            _INSERT_EVENT,
            (execution_id, EventType(event_type).value, created_at, body, dedupe_key),
        ).fetchall()[0][0]
        return ExecutionEvent(
            execution_id,
            seq,
            EventType(event_type),
            from_db_time(created_at),  # type: ignore[arg-type]
            json.loads(body),
            dedupe_key,
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
        with self.database.transaction() as conn:
            self._require(conn, execution_id)
            if dedupe_key is not None:
                row = conn.execute(
                    "SELECT execution_id, seq, event_type, created_at, payload, dedupe_key "
                    "FROM execution_events WHERE execution_id = ? AND dedupe_key = ?",
                    (execution_id, dedupe_key),
                ).fetchone()
                if row is not None:
                    return _row_to_event(row)
            return self._insert_event(
                conn,
                execution_id,
                EventType(event_type),
                dict(payload or {}),
                dedupe_key,
                to_db_time(utcnow()),
            )

    def list_events(self, execution_id: str) -> list[ExecutionEvent]:
        """An execution's events in `seq` order."""
        with self.database.lock:
            conn = self.database.conn
            self._require(conn, execution_id)
            rows = conn.execute(
                "SELECT execution_id, seq, event_type, created_at, payload, dedupe_key "
                "FROM execution_events WHERE execution_id = ? ORDER BY seq",
                (execution_id,),
            ).fetchall()
        return [_row_to_event(r) for r in rows]

    # -- workers ------------------------------------------------------------------------------

    def claim_next(
        self, worker_id: str, *, lanes: tuple[Lane, ...] | None = None
    ) -> Execution | None:
        """Atomically move the oldest queued execution to running for this worker."""
        sql = "SELECT id, status FROM executions WHERE status = 'queued'"
        args: list[Any] = []
        if lanes is not None:
            if not lanes:
                return None
            sql += f" AND lane IN ({', '.join('?' * len(lanes))})"
            args += [Lane(lane).value for lane in lanes]
        sql += " ORDER BY id LIMIT 1"
        with self.database.transaction() as conn:
            row = conn.execute(sql, args).fetchone()
            if row is None:
                return None
            return self._transition(
                conn,
                row[0],
                ExecutionStatus.RUNNING,
                error=None,
                error_category=None,
                result=None,
                payload=None,
                worker_id=worker_id,
                current=row[1],
            )

    def count_by_status(self) -> dict[str, int]:
        """How many executions are in each status."""
        with self.database.lock:
            rows = self.database.conn.execute(
                "SELECT status, COUNT(*) FROM executions GROUP BY status"
            ).fetchall()
        return {status: count for status, count in rows}

    # -- status -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The database's applied schema version."""
        with self.database.lock:
            return schema_version(self.database.conn)

    def table_counts(self) -> dict[str, int]:
        """Row count of every table in the database."""
        return self.database.table_counts()

    def close(self) -> None:
        """Close the connection (unless it was handed in by the caller)."""
        if self._owns_database:
            self.database.close()

    def __repr__(self) -> str:
        return f"SqliteLedgerStore({str(self.database.path)!r})"
