"""`PostgresDeadLetterStore`: core's `DeadLetterStore` over the `dead_letters` table.

It shares the ledger's `PgDatabase` (pool and loop) and writes the ledger's rows itself only in
`dead_letter`, whose one statement moves the execution failed -> dead_lettered, appends its
event and inserts the record: all three or none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from spine_core.dead_letters import DeadLetter, DeadLetterClosed, DeadLetterNotFound
from spine_core.errors import ExecutionNotFound
from spine_core.events import EventType
from spine_core.execution import Execution, new_execution_id, utcnow
from spine_core.status import ExecutionStatus, check_transition
from spine_intermediate.pg.connect import CONNECT_TIMEOUT, PgDatabase

_COLUMNS = (
    "id, execution_id, reason, error, error_category, attempts, created_at, retried_as, "
    "discarded_at"
)

# `last_seq + 1` under the row lock the UPDATE takes, as every ledger write computes it.
_DEAD_LETTER = f"""
WITH changed AS (
    UPDATE executions SET status = '{ExecutionStatus.DEAD_LETTERED.value}', updated_at = $4,
        last_seq = last_seq + 1
    WHERE id = $1 AND status = '{ExecutionStatus.FAILED.value}'
    RETURNING id, error, error_category, last_seq
), event AS (
    INSERT INTO execution_events (execution_id, seq, event_type, payload, dedupe_key, created_at)
    SELECT id, last_seq, '{EventType.DEAD_LETTERED.value}', $5::jsonb, NULL, $4 FROM changed
)
INSERT INTO dead_letters (id, execution_id, reason, error, error_category, attempts, created_at)
SELECT $6, id, $2, error, error_category, $3, $4 FROM changed
RETURNING {_COLUMNS}
"""

_OPEN = "retried_as IS NULL AND discarded_at IS NULL"

_LIST = f"""
SELECT {_COLUMNS} FROM dead_letters
WHERE ($1::text IS NULL OR id < $1) AND (NOT $2 OR ({_OPEN}))
ORDER BY id DESC LIMIT $3
"""


def _letter(row: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(**dict(row))


class PostgresDeadLetterStore:
    """Dead letters in PostgreSQL, beside the ledger on the same database."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db

    def dead_letter(self, execution_id: str, *, reason: str, attempts: int) -> DeadLetter:
        """Move, event and record in one statement; nothing unless the execution is failed."""
        return self.db.call(self._dead_letter(execution_id, reason, attempts))

    async def _dead_letter(self, execution_id: str, reason: str, attempts: int) -> DeadLetter:
        payload = {"reason": reason, "attempt": attempts, "attempts": attempts}
        while True:
            row = await self.db.pool.fetchrow(
                _DEAD_LETTER, execution_id, reason, attempts, utcnow(), payload, new_execution_id()
            )
            if row is not None:
                return _letter(row)
            current = await self.db.pool.fetchval(
                "SELECT status FROM executions WHERE id = $1", execution_id
            )
            if current is None:
                raise ExecutionNotFound(execution_id)
            # Legal from the status it has now: it became failed between the two statements.
            check_transition(current, ExecutionStatus.DEAD_LETTERED)

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """The record, or `DeadLetterNotFound`."""
        row = self.db.call(
            self.db.pool.fetchrow(
                f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1", dead_letter_id
            )
        )
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        return _letter(row)

    def list_dead_letters(
        self, *, before_id: str | None = None, limit: int = 50, open_only: bool = False
    ) -> list[DeadLetter]:
        """Newest first; `before_id` pages."""
        rows = self.db.call(self.db.pool.fetch(_LIST, before_id, open_only, max(0, limit)))
        return [_letter(r) for r in rows]

    def retry_with(
        self, dead_letter_id: str, submit: Callable[[DeadLetter], Execution]
    ) -> Execution:
        """Lock the open record (`FOR UPDATE`), submit, record the retry, commit.

        The lock is held on a connection of its own, outside the pool: callers waiting on it
        must not hold the pool connections that `submit` needs to create the retry.
        """
        conn = self.db.call(asyncpg.connect(dsn=self.db.url, timeout=CONNECT_TIMEOUT))
        try:
            transaction = conn.transaction()
            self.db.call(transaction.start())
            try:
                row = self.db.call(
                    conn.fetchrow(
                        f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1 FOR UPDATE",
                        dead_letter_id,
                    )
                )
                if row is None:
                    raise DeadLetterNotFound(dead_letter_id)
                letter = _letter(row)
                if not letter.is_open:
                    raise DeadLetterClosed(letter)
                execution = submit(letter)
                self.db.call(
                    conn.execute(
                        "UPDATE dead_letters SET retried_as = $2 WHERE id = $1",
                        dead_letter_id,
                        execution.id,
                    )
                )
            except BaseException:
                self.db.call(transaction.rollback())
                raise
            self.db.call(transaction.commit())
            return execution
        finally:
            self.db.call(conn.close())

    def discard(self, dead_letter_id: str) -> DeadLetter:
        """Close without a retry, only if still open."""
        return self._close(dead_letter_id, "discarded_at = $2", utcnow())

    def _close(self, dead_letter_id: str, assignment: str, value: Any) -> DeadLetter:
        row = self.db.call(
            self.db.pool.fetchrow(
                f"UPDATE dead_letters SET {assignment} WHERE id = $1 AND {_OPEN} "
                f"RETURNING {_COLUMNS}",
                dead_letter_id,
                value,
            )
        )
        if row is None:
            raise DeadLetterClosed(self.get_dead_letter(dead_letter_id))
        return _letter(row)

    def count_dead_letters(self, *, open_only: bool = True) -> int:
        """Open ones, or all."""
        where = f" WHERE {_OPEN}" if open_only else ""
        return self.db.call(self.db.pool.fetchval(f"SELECT count(*) FROM dead_letters{where}"))
