"""The whole-job baseline: what a user writes by hand in an afternoon instead of `otc.daily`.

The csv module parses the file, `sqlite3.executemany` (or asyncpg's COPY) loads the trades
into one typed table, and one GROUP BY (`bench.metrics_sql`) writes the daily metrics. Nothing
is validated, nothing raw is kept, no ledger is written.

Run on its own beside `spine run otc.daily` (the hold-out-style check):

    python -m bench.plain_daily FILE.psv scratch.db
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import metrics_sql
from bench.common import csv_rows

TRADES_DDL = (
    "CREATE TABLE {} (trade_date TEXT, trade_time TEXT, symbol TEXT, venue TEXT, "
    "short_type TEXT, size {num}, price {num}, notional {num}, source_key TEXT, "
    "line_number INTEGER)"
)
METRICS_DDL = (
    "CREATE TABLE plain_metrics (trade_date TEXT, symbol TEXT, trade_count INTEGER, "
    "volume REAL, notional REAL, vwap REAL, high REAL, low REAL, first_price REAL, "
    "last_price REAL, venue_count INTEGER, venue_hhi REAL, short_exempt_share REAL, "
    "regular_hours_volume REAL, extended_hours_volume REAL)"
)


def trade_rows(path: Path) -> Iterator[tuple]:
    """Rows shaped as the table; rows the GROUP BY could not use are dropped, unchecked."""
    for line_number, row in enumerate(csv_rows(path), start=2):
        try:
            venue, symbol, day, clock, short, size_text, price_text, _ = row
            size, price = float(size_text), float(price_text)
        except ValueError:
            continue
        if size <= 0 or price <= 0:
            continue
        day = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        yield (day, clock, symbol, venue, short, size, price, size * price, "f", line_number)


def run_sqlite(path: Path, db: Path) -> int:
    """Load and aggregate into `db` (a new file); the number of metric rows."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = wal")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(TRADES_DDL.format("plain_trades", num="REAL"))
        conn.execute(METRICS_DDL)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO plain_trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", trade_rows(path)
        )
        conn.execute(
            f"INSERT INTO plain_metrics ({metrics_sql.COLUMNS})\n"
            + metrics_sql.baseline_select(None, "plain_trades")
        )
        conn.execute("COMMIT")
        return conn.execute("SELECT COUNT(*) FROM plain_metrics").fetchone()[0]
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.plain_daily FILE SCRATCH.db", file=sys.stderr)
        return 2
    path, db = Path(argv[0]), Path(argv[1])
    if db.exists():
        print(f"error: {db} exists; give a new file", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = run_sqlite(path, db)
    print(f"{rows} metric rows in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
