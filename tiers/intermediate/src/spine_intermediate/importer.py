"""`spine db import-sqlite`: carry a basic-tier SQLite database into PostgreSQL.

Each table group (the ledger; the OTC tables) is copied in one transaction: rows stream from
SQLite in chunks, COPY into a temporary table, then `INSERT ... SELECT ... ON CONFLICT DO
NOTHING` on the natural keys, so importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from spine_core.errors import ConfigurationError
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.pg.otc import CHUNK_ROWS, _Session

Column = tuple[str, str]  # (name in PostgreSQL, SQL type to cast the text to)

_EXECUTIONS: list[Column] = [
    ("id", "text"),
    ("name", "text"),
    ("params", "jsonb"),
    ("status", "text"),
    ("lane", "text"),
    ("trigger_source", "text"),
    ("logical_key", "text"),
    ("parent_execution_id", "text"),
    ("backend", "text"),
    ("retry_count", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"),
    ("error", "text"),
    ("error_category", "text"),
    ("result", "jsonb"),
    ("worker_id", "text"),
]
_EVENTS: list[Column] = [
    ("execution_id", "text"),
    ("seq", "integer"),
    ("event_type", "text"),
    ("payload", "jsonb"),
    ("dedupe_key", "text"),
    ("created_at", "timestamptz"),
]
_BATCHES: list[Column] = [
    ("batch_id", "text"),
    ("source_key", "text"),
    ("file_name", "text"),
    ("content_hash", "text"),
    ("row_count", "integer"),
    ("captured_at", "timestamptz"),
    ("status", "text"),
    ("detail", "text"),
    ("trade_count", "integer"),
    ("reject_count", "integer"),
    ("affected_dates", "date[]"),
]
_RAW: list[Column] = [
    ("batch_id", "text"),
    ("line_number", "integer"),
    ("raw_line", "text"),
    ("record_hash", "text"),
]
_TRADES: list[Column] = [
    ("source_key", "text"),
    ("line_number", "integer"),
    ("batch_id", "text"),
    ("trade_date", "date"),
    ("trade_time", "text"),
    ("symbol", "text"),
    ("venue", "text"),
    ("short_type", "text"),
    ("size", "numeric"),
    ("price", "numeric"),
    ("notional", "numeric"),
]
_REJECTS: list[Column] = [
    ("batch_id", "text"),
    ("line_number", "integer"),
    ("reason", "text"),
    ("message", "text"),
    ("raw_line", "text"),
]
_METRICS: list[Column] = [
    ("trade_date", "date"),
    ("symbol", "text"),
    ("trade_count", "integer"),
    *(
        (name, "double precision")
        for name in ("volume", "notional", "vwap", "high", "low", "first_price", "last_price")
    ),
    ("venue_count", "integer"),
    *(
        (name, "double precision")
        for name in (
            "venue_hhi",
            "short_exempt_share",
            "regular_hours_volume",
            "extended_hours_volume",
        )
    ),
]


def _pg_date_array(text: str | None) -> str:
    dates = json.loads(text) if text else []
    return "{" + ",".join(dates) + "}"


def _trade_row(row: sqlite3.Row) -> list[Any]:
    size, price = Decimal(row["size_exact"]), Decimal(row["price_exact"])
    return [
        row["source_key"],
        row["line_number"],
        row["batch_id"],
        row["trade_date"],
        row["trade_time"],
        row["symbol"],
        row["venue"],
        row["short_type"],
        size,
        price,
        size * price,
    ]


# (table, columns, SQLite query, row converter or None for "same columns, same order")
_GROUPS: dict[
    str, list[tuple[str, list[Column], str, Callable[[sqlite3.Row], list[Any]] | None]]
] = {
    "ledger": [
        ("executions", _EXECUTIONS, "SELECT {cols} FROM executions ORDER BY id", None),
        (
            "execution_events",
            _EVENTS,
            "SELECT {cols} FROM execution_events ORDER BY execution_id, seq",
            None,
        ),
    ],
    "otc": [
        (
            "otc_batches",
            _BATCHES,
            "SELECT {cols} FROM otc_batches ORDER BY captured_at",
            lambda r: [*list(r)[:-1], _pg_date_array(r["affected_dates"])],
        ),
        (
            "otc_trades_raw",
            _RAW,
            "SELECT {cols} FROM otc_trades_raw ORDER BY batch_id, line_number",
            None,
        ),
        (
            "otc_trades",
            _TRADES,
            "SELECT source_key, line_number, batch_id, trade_date, trade_time, symbol, venue, "
            "short_type, size_exact, price_exact FROM otc_trades ORDER BY source_key, line_number",
            _trade_row,
        ),
        (
            "otc_rejects",
            _REJECTS,
            "SELECT {cols} FROM otc_rejects ORDER BY batch_id, line_number",
            None,
        ),
        (
            "otc_metrics_daily",
            _METRICS,
            "SELECT {cols} FROM otc_metrics_daily ORDER BY trade_date, symbol",
            None,
        ),
    ],
}


_INSERTS = {
    # PostgreSQL keeps raw lines under their batch's number; file and source are the batch's
    "otc_trades_raw": (
        "INSERT INTO otc_raw_lines (batch_no, line_number, raw_line, record_hash) "
        "SELECT b.batch_no, t.line_number::integer, t.raw_line, t.record_hash FROM {temp} AS t "
        "JOIN otc_batches AS b ON b.batch_id = t.batch_id"
    ),
}
"""The INSERT of a table whose PostgreSQL rows are not its SQLite rows cast column by column."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _chunks(
    cursor: sqlite3.Cursor, convert: Callable[[sqlite3.Row], list[Any]] | None
) -> Iterator[list[tuple[str | None, ...]]]:
    while rows := cursor.fetchmany(CHUNK_ROWS):
        yield [tuple(_text(v) for v in (convert(r) if convert else list(r))) for r in rows]


def _tables(conn: sqlite3.Connection) -> set[str]:
    """Tables and views: from basic 0.4 on, `otc_trades_raw` is a view over `otc_raw_lines`."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {r[0] for r in rows}


def import_sqlite(path: str | Path, db: PgDatabase) -> dict[str, tuple[int, int]]:
    """Copy every known table; returns {table: (rows read, rows added)}."""
    path = Path(path)
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        source.row_factory = sqlite3.Row
        present = _tables(source)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot read SQLite database {path}: {exc}") from None
    if "executions" not in present:
        source.close()
        raise ConfigurationError(f"{path} is not a Market Spine database (no executions table)")
    report: dict[str, tuple[int, int]] = {}
    try:
        for group in _GROUPS.values():
            with _Session(db) as s:
                for table, columns, query, convert in group:
                    if table not in present:
                        continue
                    report[table] = _copy_table(s, source, table, columns, query, convert)
    finally:
        source.close()
    return report


def _copy_table(
    s: _Session,
    source: sqlite3.Connection,
    table: str,
    columns: Sequence[Column],
    query: str,
    convert: Callable[[sqlite3.Row], list[Any]] | None,
) -> tuple[int, int]:
    names = [name for name, _ in columns]
    temp = f"_import_{table}"
    s(
        s.conn.execute(
            f"CREATE TEMP TABLE {temp} ({', '.join(f'{n} text' for n in names)}) ON COMMIT DROP"
        )
    )
    cursor = source.execute(query.format(cols=", ".join(names)))
    read = 0
    for chunk in _chunks(cursor, convert):
        s(s.conn.copy_records_to_table(temp, records=chunk, columns=names))
        read += len(chunk)
    casts = ", ".join(f"{name}::{kind}" for name, kind in columns)
    insert = _INSERTS.get(
        table, f"INSERT INTO {table} ({', '.join(names)}) SELECT {casts} FROM {{temp}}"
    )
    status = s(s.conn.execute(insert.format(temp=temp) + " ON CONFLICT DO NOTHING"))
    s(s.conn.execute(f"DROP TABLE {temp}"))
    return read, int(status.rsplit(" ", 1)[-1])
