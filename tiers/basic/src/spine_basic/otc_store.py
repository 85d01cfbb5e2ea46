"""The OTC tables in SQLite: spine_otc's `OtcStore`, bulk writes in single transactions.

Capture streams the reader's blocks straight into `executemany` on the raw sqlite3 connection,
each block's columns zipped in C (constant memory, no Python call per row); normalization
streams the raw rows back out in fixed-size chunks and decides each chunk at once
(`spine_otc.bulk`); metrics are computed in the database by spine_otc's portable set-based SQL,
in its `seek` shape, which `otc_trades`' primary key order serves (migration 5).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import date
from decimal import Decimal
from itertools import repeat
from operator import add, itemgetter
from pathlib import Path
from typing import Any

from spine_basic.database import SqliteDatabase, from_db_time, to_db_time
from spine_basic.migrations import check_schema
from spine_otc.bulk import decide_chunk
from spine_otc.errors import BatchNotFound, DuplicateBatch
from spine_otc.gc_pause import gc_paused
from spine_otc.metrics import METRIC_FIELDS, DailyMetrics, sanity_quality
from spine_otc.normalize import (
    NormalizeTally,
    RejectReason,
    Trade,
    refusal_detail,
)
from spine_otc.parser import RawBlock, RawRow, as_blocks, record_hashes
from spine_otc.sql import delete_daily_metrics_sql, insert_daily_metrics_sql, metrics_sanity_sql
from spine_otc.store import (
    TABLES,
    Accept,
    Batch,
    BatchStatus,
    CaptureInfo,
    MetricsOutcome,
    NormalizeOutcome,
    Normalizer,
    RejectRecord,
    Replacement,
    StoredTrade,
    replacements,
)

CACHE_KIB = 32 * 1024
"""The OTC connection's page cache. Normalize inserts each trade at its (date, symbol) place in
`otc_trades`, so a load keeps one leaf page per (date, symbol) of the file hot; SQLite's default
2 MiB held too few of them (1M → 4M trades: 9.2 → 12.6 µs a row, against 7.9 → 9.2 with 32 MiB).
It is a ceiling, not an allocation: a small database uses what it has."""
CHUNK_ROWS = 20_000
"""Raw rows normalized per chunk (one fetch, one `executemany`): big enough to amortise the
calls, small enough to stay flat."""

_BATCH_COLUMNS = (
    "batch_id, source_key, file_name, content_hash, row_count, captured_at, status, detail, "
    "trade_count, reject_count, affected_dates"
)
_TRADE_COLUMNS = (
    "batch_id, source_key, line_number, trade_date, trade_time, symbol, venue, short_type, "
    "size_exact, price_exact"
)
_INSERT_RAW = (
    "INSERT INTO otc_raw_lines (batch_no, line_number, raw_line, record_hash) VALUES (?, ?, ?, ?)"
)
_INSERT_TRADE = (
    "INSERT INTO otc_trades (trade_date, trade_time, symbol, venue, short_type, "
    "size, price, notional, size_exact, price_exact, line_number, source_key, batch_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""A trade's `TradeValues`, then its line number, source key and batch (the table computes the
timestamp from the date and time)."""
_DAY = itemgetter(0)
_INSERT_REJECT = (
    "INSERT INTO otc_rejects (batch_id, line_number, reason, message, raw_line) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _row_to_batch(row: tuple) -> Batch:
    (
        batch_id,
        source_key,
        file_name,
        content_hash,
        row_count,
        captured_at,
        status,
        detail,
        trade_count,
        reject_count,
        affected,
    ) = row
    return Batch(
        batch_id=batch_id,
        source_key=source_key,
        file_name=file_name,
        content_hash=content_hash,
        row_count=row_count,
        captured_at=from_db_time(captured_at),  # type: ignore[arg-type]
        status=BatchStatus(status),
        detail=detail,
        trade_count=trade_count,
        reject_count=reject_count,
        affected_dates=tuple(date.fromisoformat(d) for d in json.loads(affected or "[]")),
    )


_ON_DATES = "trade_date IN (SELECT value FROM json_each(?1))"
"""The trades of a JSON list of dates: ranges of the primary key."""
_RESTATED = f"FROM otc_trades WHERE {_ON_DATES} AND source_key = ?2 AND batch_id <> ?3"


def _replace_restated_dates(
    conn: sqlite3.Connection, source_key: str, batch_id: str, new_per_date: Counter[str]
) -> tuple[Replacement, ...]:
    """Delete the source's other trades on the batch's dates; say whose."""
    args = (json.dumps(sorted(new_per_date)), source_key, batch_id)
    lost = conn.execute(
        f"SELECT batch_id, trade_date, COUNT(*) {_RESTATED} GROUP BY batch_id, trade_date", args
    ).fetchall()
    conn.execute(f"DELETE {_RESTATED}", args)
    return replacements(
        ((b, date.fromisoformat(d), n) for b, d, n in lost),
        {date.fromisoformat(d): n for d, n in new_per_date.items()},
    )


def _dates_json(dates: Iterable[date]) -> str:
    return json.dumps([d.isoformat() for d in dates])


class SqliteOtcStore:
    """spine_otc's `OtcStore` over the OTC tables of one SQLite file; thread-safe.

    Opening refuses a database whose schema is behind (`run spine db init`).
    """

    def __init__(self, path: str | Path, *, database: SqliteDatabase | None = None) -> None:
        self.database = database or SqliteDatabase(path)
        self._owns_database = database is None
        try:
            check_schema(self.database.conn, where=str(self.database.path))
            self.database.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        except BaseException:
            if self._owns_database:
                self.database.close()
            raise

    @property
    def path(self) -> Path:
        """The database file."""
        return self.database.path

    # -- batches ------------------------------------------------------------------------------

    def find_batch(self, content_hash: str) -> Batch | None:
        """The batch that captured this exact content, if any."""
        with self.database.lock:
            row = self.database.conn.execute(
                f"SELECT {_BATCH_COLUMNS} FROM otc_batches WHERE content_hash = ?",
                (content_hash,),
            ).fetchone()
        return None if row is None else _row_to_batch(row)

    def get_batch(self, batch_id: str) -> Batch | None:
        """The batch with this id, if any."""
        with self.database.lock:
            return self._get_batch(self.database.conn, batch_id)

    def _get_batch(self, conn: sqlite3.Connection, batch_id: str) -> Batch | None:
        row = conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM otc_batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else _row_to_batch(row)

    def list_batches(self, source_key: str | None = None, *, limit: int = 100) -> list[Batch]:
        """Batches, newest capture first, optionally of one source."""
        where, args = ("WHERE source_key = ?", [source_key]) if source_key is not None else ("", [])
        with self.database.lock:
            rows = self.database.conn.execute(
                f"SELECT {_BATCH_COLUMNS} FROM otc_batches {where} "
                "ORDER BY captured_at DESC, batch_id DESC LIMIT ?",
                [*args, max(0, int(limit))],
            ).fetchall()
        return [_row_to_batch(r) for r in rows]

    # -- capture ------------------------------------------------------------------------------

    def capture_batch(self, info: CaptureInfo, rows: Iterable[RawRow | RawBlock]) -> Batch:
        """Write the batch (status captured) and its raw rows in one transaction, streaming."""
        existing = self.find_batch(info.content_hash)
        if existing is not None:
            raise DuplicateBatch(info.content_hash, existing.batch_id)
        batch_id, file_name, source_key = info.batch_id, info.file_name, info.source_key
        count = 0
        try:
            with gc_paused(), self.database.transaction() as conn:
                (batch_no,) = conn.execute(
                    "INSERT INTO otc_batches (batch_id, batch_no, source_key, file_name, "
                    "content_hash, row_count, captured_at, status) VALUES (?, "
                    "(SELECT COALESCE(MAX(batch_no), 0) + 1 FROM otc_batches), ?, ?, ?, 0, ?, "
                    "'captured') RETURNING batch_no",
                    (
                        batch_id,
                        source_key,
                        file_name,
                        info.content_hash,
                        to_db_time(info.captured_at),
                    ),
                ).fetchone()
                for block in as_blocks(rows):
                    # Whole columns zipped in C: no Python call and no object per row.
                    lines = block.lines
                    conn.executemany(
                        _INSERT_RAW,
                        zip(
                            repeat(batch_no),
                            range(block.first_line, block.first_line + len(lines)),
                            lines,
                            record_hashes(lines),
                        ),
                    )
                    count += len(lines)
                conn.execute(
                    "UPDATE otc_batches SET row_count = ? WHERE batch_id = ?", (count, batch_id)
                )
                batch = self._get_batch(conn, batch_id)
        except sqlite3.IntegrityError as exc:
            if "content_hash" in str(exc):
                raced = self.find_batch(info.content_hash)
                raise DuplicateBatch(
                    info.content_hash, raced.batch_id if raced else "(unknown)"
                ) from None
            raise
        assert batch is not None
        return batch

    # -- normalize ----------------------------------------------------------------------------

    def normalize_batch(
        self, batch_id: str, normalizer: Normalizer, accept: Accept
    ) -> NormalizeOutcome:
        """Replace the batch's source's trades with this batch's, in one transaction."""
        tally = NormalizeTally()
        trades = rejects = 0
        replaced: tuple[Replacement, ...] = ()
        per_date: Counter[str] = Counter()
        with gc_paused(), self.database.lock:
            conn = self.database.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                batch = self._get_batch(conn, batch_id)
                if batch is None:
                    raise BatchNotFound(batch_id)
                source_key = batch.source_key
                if batch.affected_dates:  # normalized before: its trades lie on those dates
                    conn.execute(
                        f"DELETE FROM otc_trades WHERE {_ON_DATES} AND source_key = ?2 "
                        "AND batch_id = ?3",
                        (_dates_json(batch.affected_dates), source_key, batch_id),
                    )
                conn.execute("DELETE FROM otc_rejects WHERE batch_id = ?", (batch_id,))
                reader = conn.execute(
                    "SELECT r.line_number, r.raw_line FROM otc_raw_lines AS r "
                    "JOIN otc_batches AS b ON b.batch_no = r.batch_no WHERE b.batch_id = ? "
                    "ORDER BY r.line_number",
                    (batch_id,),
                )
                while raw_rows := reader.fetchmany(CHUNK_ROWS):
                    numbers, lines = zip(*raw_rows, strict=True)
                    chunk = decide_chunk(numbers, lines, normalizer, tally)
                    # Each row is its values plus (line, source, batch), joined in C.
                    conn.executemany(
                        _INSERT_TRADE,
                        map(
                            add,
                            chunk.trade_values,
                            zip(chunk.trade_lines, repeat(source_key), repeat(batch_id)),
                        ),
                    )
                    if chunk.rejects:
                        conn.executemany(
                            _INSERT_REJECT,
                            [
                                (batch_id, number, reject.reason.value, reject.message, line)
                                for number, reject, line in chunk.rejects
                            ],
                        )
                    per_date.update(map(_DAY, chunk.trade_values))
                    trades += len(chunk.trade_values)
                    rejects += len(chunk.rejects)
                quality = tally.quality()
                accepted = bool(accept(quality))
                if accepted:
                    replaced = _replace_restated_dates(conn, source_key, batch_id, per_date)
                    affected = sorted(per_date)
                    conn.execute(
                        "UPDATE otc_batches SET status = 'normalized', detail = NULL, "
                        "trade_count = ?, reject_count = ?, affected_dates = ? "
                        "WHERE batch_id = ?",
                        (trades, rejects, json.dumps(affected), batch_id),
                    )
                    conn.execute("COMMIT")
                else:
                    conn.execute("ROLLBACK")
                    with self.database.transaction() as tx:
                        tx.execute(
                            "UPDATE otc_batches SET status = 'gate_failed', detail = ?, "
                            "trade_count = ?, reject_count = ?, affected_dates = '[]' "
                            "WHERE batch_id = ?",
                            (refusal_detail(quality), trades, rejects, batch_id),
                        )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            updated = self._get_batch(conn, batch_id)
        assert updated is not None
        return NormalizeOutcome(updated, quality, accepted, replaced)

    # -- metrics ------------------------------------------------------------------------------

    def recompute_daily_metrics(self, dates: Collection[date], accept: Accept) -> MetricsOutcome:
        """Recompute the dates' `otc_metrics_daily` rows set-based, committing if accepted."""
        wanted = tuple(sorted(set(dates)))
        if not wanted:
            quality = sanity_quality(0, 0, 0, 0)
            return MetricsOutcome((), quality, bool(accept(quality)))
        params = [d.isoformat() for d in wanted]
        n = len(params)
        with self.database.lock:
            conn = self.database.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(delete_daily_metrics_sql(n), params)
                conn.execute(insert_daily_metrics_sql(n, "qmark", "seek"), params)
                row = conn.execute(metrics_sanity_sql(n), params).fetchone()
                quality = sanity_quality(*row)
                accepted = bool(accept(quality))
                conn.execute("COMMIT" if accepted else "ROLLBACK")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return MetricsOutcome(wanted, quality, accepted)

    # -- queries ------------------------------------------------------------------------------

    def query_metrics(
        self,
        *,
        symbol: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DailyMetrics]:
        """Daily metrics ordered by date then symbol; the date bounds are inclusive."""
        where: list[str] = []
        args: list[Any] = []
        if symbol is not None:
            where.append("symbol = ?")
            args.append(symbol)
        if date_from is not None:
            where.append("trade_date >= ?")
            args.append(date_from.isoformat())
        if date_to is not None:
            where.append("trade_date <= ?")
            args.append(date_to.isoformat())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        args += [-1 if limit is None else max(0, int(limit)), max(0, int(offset))]
        with self.database.lock:
            rows = self.database.conn.execute(
                f"SELECT {', '.join(METRIC_FIELDS)} FROM otc_metrics_daily {clause} "
                "ORDER BY trade_date, symbol LIMIT ? OFFSET ?",
                args,
            ).fetchall()
        return [DailyMetrics.from_row(r) for r in rows]

    def query_trades(
        self,
        *,
        symbol: str | None = None,
        trade_date: date | None = None,
        venue: str | None = None,
        batch_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredTrade]:
        """Trades ordered by date, time, source key and line number."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("symbol", symbol),
            ("trade_date", trade_date.isoformat() if trade_date else None),
            ("venue", venue),
            ("batch_id", batch_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if batch_id is not None:  # a batch's trades lie on its dates: ranges of the primary key
            where.append(
                "trade_date IN (SELECT value FROM json_each("
                "(SELECT affected_dates FROM otc_batches WHERE batch_id = ?)))"
            )
            args.append(batch_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        args += [max(0, int(limit)), max(0, int(offset))]
        with self.database.lock:
            rows = self.database.conn.execute(
                f"SELECT {_TRADE_COLUMNS} FROM otc_trades {clause} "
                "ORDER BY trade_date, trade_time, source_key, line_number LIMIT ? OFFSET ?",
                args,
            ).fetchall()
        return [
            StoredTrade(
                batch_id,
                source_key,
                line_number,
                Trade(
                    date.fromisoformat(day), time, sym, ven, short, Decimal(size), Decimal(price)
                ),
            )
            for (batch_id, source_key, line_number, day, time, sym, ven, short, size, price) in rows
        ]

    def query_rejects(
        self,
        batch_id: str,
        *,
        reason: RejectReason | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RejectRecord]:
        """A batch's rejected rows in line order."""
        sql = "SELECT batch_id, line_number, reason, message, raw_line FROM otc_rejects "
        sql += "WHERE batch_id = ?"
        args: list[Any] = [batch_id]
        if reason is not None:
            sql += " AND reason = ?"
            args.append(RejectReason(reason).value)
        sql += " ORDER BY line_number LIMIT ? OFFSET ?"
        args += [max(0, int(limit)), max(0, int(offset))]
        with self.database.lock:
            rows = self.database.conn.execute(sql, args).fetchall()
        return [RejectRecord(b, n, RejectReason(r), m, raw) for b, n, r, m, raw in rows]

    def reject_counts(self, batch_id: str) -> dict[str, int]:
        """How many of the batch's rows were rejected, per reason code."""
        with self.database.lock:
            rows = self.database.conn.execute(
                "SELECT reason, COUNT(*) FROM otc_rejects WHERE batch_id = ? "
                "GROUP BY reason ORDER BY reason",
                (batch_id,),
            ).fetchall()
        return {reason: count for reason, count in rows}

    def table_counts(self) -> dict[str, int]:
        """Row count of each OTC table."""
        with self.database.lock:
            return {
                table: self.database.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in TABLES
            }

    def close(self) -> None:
        """Close the connection (unless it was handed in by the caller)."""
        if self._owns_database:
            self.database.close()

    def __repr__(self) -> str:
        return f"SqliteOtcStore({str(self.database.path)!r})"


__all__ = ["SqliteOtcStore"]
