"""`PostgresOtcStore`: spine-otc's `OtcStore` on PostgreSQL (COPY for bulk loads, SQL metrics)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import repeat
from typing import Any

import asyncpg

from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.pg.normalize_sql import NORMALIZE_SQL
from spine_otc.errors import BatchNotFound, DuplicateBatch
from spine_otc.metrics import METRIC_FIELDS, DailyMetrics, sanity_quality
from spine_otc.normalize import (
    NormalizeTally,
    Reject,
    RejectReason,
    Trade,
    normalize_line,
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

CHUNK_ROWS = 5_000
NORMALIZE_LINES = 250_000
"""Line numbers per normalize statement: a few seconds each, however long the file."""
COPY_ROWS = 20_000
"""Raw rows per COPY while capturing: two chunks in memory, one being read, one being sent."""

_METRICS_LOCK_CLASS = 0x07C0
"""The advisory-lock class of a date's metrics; the lock's key is the date's day number."""
_LOCK_DATES = (
    f"SELECT pg_advisory_xact_lock({_METRICS_LOCK_CLASS}, d - DATE '2000-01-01') "
    "FROM (SELECT DISTINCT unnest($1::date[]) AS d ORDER BY d) AS days"
)

_METRICS_WORK_MEM = "SET LOCAL work_mem = '32MB'"
"""Room for the metrics' grouping to hash every (date, symbol) of the dates in memory: the
seek shape needs no sorted input, so PostgreSQL can then read the trades in one sequential
pass. Measured on 1M trades (6,000 pairs, 25 MB of hash table): 1.5-1.9 s, against 2.4-3.5 s
with the default 4 MB, which walks the index and fetches every trade's row at random."""

_BATCH_COLUMNS = (
    "batch_id, source_key, file_name, content_hash, row_count, captured_at, status, detail, "
    "trade_count, reject_count, affected_dates"
)
_TRADE_COLUMNS = (
    "source_key",
    "line_number",
    "batch_id",
    "trade_date",
    "trade_time",
    "symbol",
    "venue",
    "short_type",
    "size",
    "price",
    "notional",
)
_REJECT_COLUMNS = ("batch_id", "line_number", "reason", "message", "raw_line")
_RAW_COLUMNS = ("batch_no", "line_number", "raw_line", "record_hash")
"""otc_raw_lines: the batch's id, file name and source key are its otc_batches row's."""


def _batch(row: Mapping[str, Any]) -> Batch:
    return Batch(
        batch_id=row["batch_id"],
        source_key=row["source_key"],
        file_name=row["file_name"],
        content_hash=row["content_hash"],
        row_count=row["row_count"],
        captured_at=row["captured_at"],
        status=BatchStatus(row["status"]),
        detail=row["detail"],
        trade_count=row["trade_count"],
        reject_count=row["reject_count"],
        affected_dates=tuple(sorted(row["affected_dates"] or ())),
    )


def _chunks(items: Iterable[Any], size: int = CHUNK_ROWS) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def _started(coro: Any) -> asyncio.Task[Any]:
    """`coro` running on the loop as a task, so the calling thread can work meanwhile."""
    return asyncio.ensure_future(coro)


async def _settled(task: asyncio.Task[Any]) -> None:
    """Wait for `task` to end, however it ends."""
    await asyncio.wait([task])


class _Session:
    """One connection and one transaction driven from the calling thread, step by step.

    Lets Python code (file readers, normalizers, accept callbacks) run in the caller's thread
    between database steps of a single transaction, without loading everything in memory.
    """

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.conn: asyncpg.Connection = db.call(db.pool.acquire())
        self.tx = self.conn.transaction()
        try:
            db.call(self.tx.start())
        except BaseException:
            db.call(db.pool.release(self.conn))
            raise
        self._done = False

    def __call__(self, coro: Any) -> Any:
        return self.db.call(coro)

    def commit(self) -> None:
        self._done = True
        self.db.call(self.tx.commit())

    def rollback(self) -> None:
        if not self._done:
            self._done = True
            self.db.call(self.tx.rollback())

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if not self._done:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.db.call(self.db.pool.release(self.conn))


def _copy_raw_rows(s: _Session, batch_no: int, rows: Iterable[RawRow | RawBlock]) -> int:
    """COPY the rows into otc_raw_lines under the batch's number; return how many.

    Each chunk's COPY runs on the loop while this thread reads and hashes the next one, so the
    file reading and the server's writing overlap instead of taking turns. A chunk's records
    are whole columns zipped in C, with no Python call per row.
    """
    count = 0
    copying: asyncio.Task[Any] | None = None

    def send(records: list[tuple]) -> asyncio.Task[Any]:
        if copying is not None:
            s(copying)  # one COPY at a time on a connection; raises the COPY's error
        return s(
            _started(
                s.conn.copy_records_to_table(
                    "otc_raw_lines", records=records, columns=list(_RAW_COLUMNS)
                )
            )
        )

    try:
        records: list[tuple] = []
        for block in as_blocks(rows):
            lines = block.lines
            records.extend(
                zip(
                    repeat(batch_no),
                    range(block.first_line, block.first_line + len(lines)),
                    lines,
                    record_hashes(lines),
                )
            )
            if len(records) >= COPY_ROWS:
                copying = send(records)
                count += len(records)
                records = []
        if records:
            copying = send(records)
            count += len(records)
        if copying is not None:
            s(copying)
    except BaseException:
        if copying is not None:
            s(_settled(copying))  # the connection must be idle before the rollback
        raise
    return count


@dataclass
class _Counts:
    """What a normalization produced so far."""

    tally: NormalizeTally = field(default_factory=NormalizeTally)
    trades: int = 0
    rejects: int = 0
    per_date: Counter[date] = field(default_factory=Counter)
    """Trades written per trade date: the dates the batch covers, and its restatement counts."""


def _normalize_lines(s: _Session, batch: Batch, batch_no: int, normalizer: Normalizer) -> _Counts:
    """Run NORMALIZE_SQL over the batch, NORMALIZE_LINES line numbers per statement.

    The statement inserts the lines it can prove valid (only when `normalizer` is
    `normalize_line`) and hands the rest back in line order; `normalizer` decides those and
    their trades and rejects are COPYed. Ranges keep each statement short and its scratch
    space bounded, whatever the file's size.
    """
    counts = _Counts()
    first, last = s(
        s.conn.fetchrow(
            "SELECT min(line_number), max(line_number) FROM otc_raw_lines WHERE batch_no = $1",
            batch_no,
        )
    )
    fast = normalizer is normalize_line
    for start in range(first or 0, (last or -1) + 1, NORMALIZE_LINES):
        end = start + NORMALIZE_LINES
        args = (batch.batch_id, batch.source_key, fast, start, end, batch_no)
        cursor = s(s.conn.cursor(NORMALIZE_SQL, *args))
        while rows := s(cursor.fetch(CHUNK_ROWS)):
            _decide(s, batch, normalizer, rows, counts)
    return counts


def _decide(
    s: _Session, batch: Batch, normalizer: Normalizer, rows: list[Any], counts: _Counts
) -> None:
    """Count the statement's per-date trade counts; normalize and write the lines handed back."""
    trades, rejects = [], []
    for line_number, raw_line, trade_date, inserted in rows:
        if line_number is None:
            counts.per_date[trade_date] += inserted
            counts.tally.rows += inserted  # trades only: no reject reason to count
            counts.trades += inserted
            continue
        result = normalizer(raw_line)
        counts.tally.add(result)
        if isinstance(result, Reject):
            rejects.append(
                (batch.batch_id, line_number, result.reason.value, result.message, raw_line)
            )
        else:
            counts.per_date[result.trade_date] += 1
            trades.append(
                (
                    batch.source_key,
                    line_number,
                    batch.batch_id,
                    result.trade_date,
                    result.trade_time,
                    result.symbol,
                    result.venue,
                    result.short_type,
                    result.size,
                    result.price,
                    result.notional,
                )
            )
    if trades:
        s(s.conn.copy_records_to_table("otc_trades", records=trades, columns=list(_TRADE_COLUMNS)))
    if rejects:
        s(
            s.conn.copy_records_to_table(
                "otc_rejects", records=rejects, columns=list(_REJECT_COLUMNS)
            )
        )
    counts.trades += len(trades)
    counts.rejects += len(rejects)


def _replace_restated_dates(
    s: _Session, source_key: str, batch_id: str, new_per_date: Mapping[date, int]
) -> tuple[Replacement, ...]:
    """Delete the source's other trades on the batch's dates; say whose.

    The dates and their counts are the ones the normalization wrote, so the batch's own
    trades are not read again.
    """
    lost = s(
        s.conn.fetch(
            "WITH lost AS (DELETE FROM otc_trades WHERE source_key = $1 AND batch_id <> $2 "
            "AND trade_date = ANY($3::date[]) RETURNING batch_id, trade_date) "
            "SELECT batch_id, trade_date, count(*) AS n FROM lost GROUP BY batch_id, trade_date",
            source_key,
            batch_id,
            sorted(new_per_date),
        )
    )
    return replacements(((r["batch_id"], r["trade_date"], r["n"]) for r in lost), new_per_date)


_STALE_TRADE_STATS = (
    "SELECT reltuples < 0 OR $1::float8 > 0.1 * reltuples FROM pg_class "
    "WHERE oid = 'otc_trades'::regclass"
)


def _refresh_trade_stats(s: _Session, written: int) -> None:
    """ANALYZE otc_trades, after the commit, when this batch is a tenth of it or more.

    The metrics usually run next, and their plan depends on the row counts: with the stats of
    before a 1M-trade batch (none) PostgreSQL sorted the trades on disk and took 3.7-4.3 s,
    against 1.5-1.9 s (ANALYZE: 0.5 s). Autovacuum would analyze too, but up to a minute
    later. Outside the transaction, so the statistics lock is not held until a commit.
    """
    try:
        if s(s.conn.fetchval(_STALE_TRADE_STATS, written)):
            s(s.conn.execute("ANALYZE otc_trades"))
    except asyncpg.PostgresError:
        pass  # the batch is committed; stale statistics only slow the next metrics down


class PostgresOtcStore:
    """The OTC tables in PostgreSQL. Synchronous; every write is one transaction."""

    def __init__(self, db: PgDatabase, *, owns_db: bool = False) -> None:
        self.db = db
        self._owns_db = owns_db

    @classmethod
    def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresOtcStore:
        """A store with its own pool (the tier shares the ledger's instead)."""
        from spine_intermediate.pg.ledger import PostgresLedgerStore

        ledger = PostgresLedgerStore.open(url, min_size=min_size, max_size=max_size)
        return cls(ledger.db, owns_db=True)

    def close(self) -> None:
        """Release the pool if this store opened it."""
        if self._owns_db:
            self.db.close()

    # -- batches ----------------------------------------------------------------------------

    def find_batch(self, content_hash: str) -> Batch | None:
        """The batch that captured this exact content, if any."""
        row = self.db.call(
            self.db.pool.fetchrow(
                f"SELECT {_BATCH_COLUMNS} FROM otc_batches WHERE content_hash = $1", content_hash
            )
        )
        return _batch(row) if row else None

    def get_batch(self, batch_id: str) -> Batch | None:
        """The batch with this id, if any."""
        row = self.db.call(
            self.db.pool.fetchrow(
                f"SELECT {_BATCH_COLUMNS} FROM otc_batches WHERE batch_id = $1", batch_id
            )
        )
        return _batch(row) if row else None

    def list_batches(self, source_key: str | None = None, *, limit: int = 100) -> list[Batch]:
        """Batches, newest capture first, optionally of one source."""
        rows = self.db.call(
            self.db.pool.fetch(
                f"SELECT {_BATCH_COLUMNS} FROM otc_batches "
                "WHERE ($1::text IS NULL OR source_key = $1) "
                "ORDER BY captured_at DESC, batch_id DESC LIMIT $2",
                source_key,
                limit,
            )
        )
        return [_batch(r) for r in rows]

    def capture_batch(self, info: CaptureInfo, rows: Iterable[RawRow | RawBlock]) -> Batch:
        """Write the batch and its raw rows (COPY, in chunks) in one transaction."""
        with _Session(self.db) as s:
            existing = s(
                s.conn.fetchval(
                    "SELECT batch_id FROM otc_batches WHERE content_hash = $1", info.content_hash
                )
            )
            if existing is not None:
                raise DuplicateBatch(info.content_hash, existing)
            try:
                batch_no = s(
                    s.conn.fetchval(
                        "INSERT INTO otc_batches (batch_id, source_key, file_name, content_hash, "
                        "row_count, captured_at, status) "
                        "VALUES ($1, $2, $3, $4, 0, $5, 'captured') RETURNING batch_no",
                        info.batch_id,
                        info.source_key,
                        info.file_name,
                        info.content_hash,
                        info.captured_at,
                    )
                )
            except asyncpg.UniqueViolationError:
                # Another transaction committed this content meanwhile; its id is readable only
                # after this one ends, so the caller looks it up with find_batch.
                raise DuplicateBatch(info.content_hash, "(captured concurrently)") from None
            count = _copy_raw_rows(s, batch_no, rows)
            row = s(
                s.conn.fetchrow(
                    f"UPDATE otc_batches SET row_count = $2 WHERE batch_id = $1 "
                    f"RETURNING {_BATCH_COLUMNS}",
                    info.batch_id,
                    count,
                )
            )
        return _batch(row)

    def normalize_batch(
        self, batch_id: str, normalizer: Normalizer, accept: Accept
    ) -> NormalizeOutcome:
        """Replace the source's trades with this batch's in one transaction, if `accept` agrees."""
        with _Session(self.db) as s:
            row = s(
                s.conn.fetchrow(
                    f"SELECT batch_no, {_BATCH_COLUMNS} FROM otc_batches "
                    "WHERE batch_id = $1 FOR UPDATE",
                    batch_id,
                )
            )
            if row is None:
                raise BatchNotFound(batch_id)
            batch = _batch(row)
            # Lock the source: concurrent normalizations of one source serialise here.
            s(s.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", batch.source_key))
            own = (batch.source_key, batch_id)
            s(
                s.conn.execute(
                    "DELETE FROM otc_trades WHERE source_key = $1 AND batch_id = $2", *own
                )
            )
            s(s.conn.execute("DELETE FROM otc_rejects WHERE batch_id = $1", batch_id))
            counts = _normalize_lines(s, batch, row["batch_no"], normalizer)
            quality = counts.tally.quality()
            if accept(quality):
                replaced = _replace_restated_dates(s, *own, counts.per_date)
                row = s(
                    s.conn.fetchrow(
                        f"UPDATE otc_batches SET status = 'normalized', detail = NULL, "
                        f"trade_count = $2, reject_count = $3, affected_dates = $4 "
                        f"WHERE batch_id = $1 RETURNING {_BATCH_COLUMNS}",
                        batch_id,
                        counts.trades,
                        counts.rejects,
                        sorted(counts.per_date),
                    )
                )
                s.commit()
                _refresh_trade_stats(s, counts.trades)
                return NormalizeOutcome(_batch(row), quality, True, replaced)
            s.rollback()
        row = self.db.call(
            self.db.pool.fetchrow(
                f"UPDATE otc_batches SET status = 'gate_failed', detail = $2, trade_count = $3, "
                f"reject_count = $4, affected_dates = '{{}}' WHERE batch_id = $1 "
                f"RETURNING {_BATCH_COLUMNS}",
                batch_id,
                refusal_detail(quality),
                counts.trades,
                counts.rejects,
            )
        )
        return NormalizeOutcome(_batch(row), quality, False)

    # -- metrics ----------------------------------------------------------------------------

    def recompute_daily_metrics(self, dates: Collection[date], accept: Accept) -> MetricsOutcome:
        """Delete and re-insert the dates' metrics set-based in SQL; commit if `accept` agrees."""
        wanted = tuple(sorted(set(dates)))
        if not wanted:
            quality = sanity_quality(0, 0, 0, 0)
            return MetricsOutcome((), quality, accept(quality))
        n = len(wanted)
        with _Session(self.db) as s:
            # Serialise on each date, in date order (no deadlock): two recomputes of one date
            # would each delete nothing the other inserted and then collide on the primary key.
            s(s.conn.execute(_LOCK_DATES, list(wanted)))
            s(s.conn.execute(_METRICS_WORK_MEM))
            s(s.conn.execute(delete_daily_metrics_sql(n, "dollar"), *wanted))
            s(s.conn.execute(insert_daily_metrics_sql(n, "dollar", "seek"), *wanted))
            sanity = s(s.conn.fetchrow(metrics_sanity_sql(n, "dollar"), *wanted))
            quality = sanity_quality(*sanity)
            accepted = accept(quality)
            if accepted:
                s.commit()
            else:
                s.rollback()
        return MetricsOutcome(wanted, quality, accepted)

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
        rows = self.db.call(
            self.db.pool.fetch(
                f"SELECT {', '.join(METRIC_FIELDS)} FROM otc_metrics_daily "
                "WHERE ($1::text IS NULL OR symbol = $1) "
                "AND ($2::date IS NULL OR trade_date >= $2) "
                "AND ($3::date IS NULL OR trade_date <= $3) "
                "ORDER BY trade_date, symbol LIMIT $4 OFFSET $5",
                symbol,
                date_from,
                date_to,
                limit,
                offset,
            )
        )
        return [DailyMetrics.from_row(dict(r)) for r in rows]

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
        rows = self.db.call(
            self.db.pool.fetch(
                "SELECT batch_id, source_key, line_number, trade_date, trade_time, symbol, venue, "
                # as text: asyncpg reads a numeric 10000 as Decimal('1E+4'), not normalize_line's
                "short_type, size::text, price::text FROM otc_trades "
                "WHERE ($1::text IS NULL OR symbol = $1) AND ($2::date IS NULL OR trade_date = $2) "
                "AND ($3::text IS NULL OR venue = $3) AND ($4::text IS NULL OR batch_id = $4) "
                "ORDER BY trade_date, trade_time, source_key, line_number LIMIT $5 OFFSET $6",
                symbol,
                trade_date,
                venue,
                batch_id,
                limit,
                offset,
            )
        )
        return [
            StoredTrade(
                r["batch_id"],
                r["source_key"],
                r["line_number"],
                Trade(
                    r["trade_date"],
                    r["trade_time"],
                    r["symbol"],
                    r["venue"],
                    r["short_type"],
                    Decimal(r["size"]),
                    Decimal(r["price"]),
                ),
            )
            for r in rows
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
        rows = self.db.call(
            self.db.pool.fetch(
                "SELECT batch_id, line_number, reason, message, raw_line FROM otc_rejects "
                "WHERE batch_id = $1 AND ($2::text IS NULL OR reason = $2) "
                "ORDER BY line_number LIMIT $3 OFFSET $4",
                batch_id,
                reason.value if reason is not None else None,
                limit,
                offset,
            )
        )
        return [
            RejectRecord(
                r["batch_id"],
                r["line_number"],
                RejectReason(r["reason"]),
                r["message"],
                r["raw_line"],
            )
            for r in rows
        ]

    def reject_counts(self, batch_id: str) -> dict[str, int]:
        """How many of the batch's rows were rejected, per reason code."""
        rows = self.db.call(
            self.db.pool.fetch(
                "SELECT reason, count(*) AS n FROM otc_rejects WHERE batch_id = $1 "
                "GROUP BY reason ORDER BY reason",
                batch_id,
            )
        )
        return {r["reason"]: r["n"] for r in rows}

    def table_counts(self) -> dict[str, int]:
        """Row count of each OTC table."""
        sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
        rows = self.db.call(self.db.pool.fetch(sql))
        return {r["t"]: r["n"] for r in rows}
