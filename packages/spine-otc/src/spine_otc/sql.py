"""Set-based SQL for `otc_metrics_daily`, portable across SQLite (3.40+) and PostgreSQL (15+).

A tier recomputes the metrics of some trade dates in ONE transaction::

    BEGIN
    <delete_daily_metrics_sql(n)>   params: the n dates
    <insert_daily_metrics_sql(n)>   params: the same n dates
    <metrics_sanity_sql(n)>         params: the same n dates -> one row of counts
    quality = sanity_quality(*that_row)
    COMMIT if accept(quality) else ROLLBACK

Every statement takes the dates as its only parameters, in the order given. Pass them as
'YYYY-MM-DD' text on SQLite and as `datetime.date` on PostgreSQL (asyncpg infers DATE).

The statements read `otc_trades(trade_date, trade_time, symbol, venue, short_type, size,
price, notional, source_key, line_number)` with trade_date as a 'YYYY-MM-DD' TEXT or DATE,
trade_time as 'HH:MM:SS' TEXT, size/price/notional REAL on SQLite and NUMERIC on PostgreSQL.
First and last price break time ties by (source_key, line_number): on PostgreSQL declare
`source_key TEXT COLLATE "C"` so ties order by code point, as in SQLite and Python.
They write `otc_metrics_daily` with the columns of `METRIC_FIELDS`.
"""

from __future__ import annotations

from typing import Literal

from spine_otc.layout import REGULAR_HOURS_END, REGULAR_HOURS_START
from spine_otc.metrics import HHI_MAX, METRIC_FIELDS, SANITY_TOLERANCE

Paramstyle = Literal["qmark", "dollar"]
"""`qmark` is `?` (sqlite3); `dollar` is `$1, $2, ...` (asyncpg)."""


def date_placeholders(count: int, paramstyle: Paramstyle = "qmark") -> str:
    """`?, ?, ?` or `$1, $2, $3`: the IN-list for `count` dates."""
    if count < 1:
        raise ValueError("need at least one date")
    if paramstyle == "qmark":
        return ", ".join("?" * count)
    if paramstyle == "dollar":
        return ", ".join(f"${index}" for index in range(1, count + 1))
    raise ValueError(f"unknown paramstyle {paramstyle!r}; use 'qmark' or 'dollar'")


def daily_metrics_select_sql(date_count: int, paramstyle: Paramstyle = "qmark") -> str:
    """A SELECT of the `METRIC_FIELDS` columns for every (date, symbol) traded on the dates.

    No joins: one window pass gives every trade its (date, symbol)'s first and last price,
    one grouping per venue sums what the day needs, a window over those few rows gives each
    venue its share of the volume, and a last grouping folds the venues into the day. (An
    earlier shape joined aggregated CTEs; PostgreSQL cannot estimate their sizes and chose a
    nested loop, quadratic in the number of (date, symbol) pairs.)
    """
    dates = date_placeholders(date_count, paramstyle)
    regular = f"trade_time >= '{REGULAR_HOURS_START}' AND trade_time < '{REGULAR_HOURS_END}'"
    return f"""WITH day_trades AS (
    SELECT trade_date, trade_time, symbol, venue, short_type, size, price, notional,
           FIRST_VALUE(price) OVER day_order AS first_price,
           LAST_VALUE(price) OVER day_order AS last_price
    FROM otc_trades
    WHERE trade_date IN ({dates})
    WINDOW day_order AS (
        PARTITION BY trade_date, symbol
        ORDER BY trade_time, source_key, line_number
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
),
venues AS (
    SELECT trade_date, symbol, venue,
           COUNT(*) AS trade_count,
           SUM(size) AS volume,
           SUM(notional) AS notional,
           MAX(price) AS high,
           MIN(price) AS low,
           MAX(first_price) AS first_price,
           MAX(last_price) AS last_price,
           SUM(CASE WHEN short_type = 'E' THEN size ELSE 0 END) AS exempt_volume,
           SUM(CASE WHEN {regular} THEN size ELSE 0 END) AS regular_hours_volume,
           SUM(CASE WHEN {regular} THEN 0 ELSE size END) AS extended_hours_volume
    FROM day_trades
    GROUP BY trade_date, symbol, venue
),
venue_shares AS (
    SELECT venues.*,
           100.0 * volume / SUM(volume) OVER (PARTITION BY trade_date, symbol) AS share
    FROM venues
)
SELECT trade_date,
       symbol,
       SUM(trade_count) AS trade_count,
       SUM(volume) AS volume,
       SUM(notional) AS notional,
       1.0 * SUM(notional) / SUM(volume) AS vwap,
       MAX(high) AS high,
       MIN(low) AS low,
       MAX(first_price) AS first_price,
       MAX(last_price) AS last_price,
       COUNT(*) AS venue_count,
       SUM(share * share) AS venue_hhi,
       1.0 * SUM(exempt_volume) / SUM(volume) AS short_exempt_share,
       SUM(regular_hours_volume) AS regular_hours_volume,
       SUM(extended_hours_volume) AS extended_hours_volume
FROM venue_shares
GROUP BY trade_date, symbol
ORDER BY trade_date, symbol"""


def insert_daily_metrics_sql(date_count: int, paramstyle: Paramstyle = "qmark") -> str:
    """INSERT INTO otc_metrics_daily the rows `daily_metrics_select_sql` produces."""
    columns = ", ".join(METRIC_FIELDS)
    select = daily_metrics_select_sql(date_count, paramstyle)
    return f"INSERT INTO otc_metrics_daily ({columns})\n{select}"


def delete_daily_metrics_sql(date_count: int, paramstyle: Paramstyle = "qmark") -> str:
    """DELETE the metrics of the dates, so symbols no longer traded there disappear too."""
    dates = date_placeholders(date_count, paramstyle)
    return f"DELETE FROM otc_metrics_daily WHERE trade_date IN ({dates})"


def metrics_sanity_sql(date_count: int, paramstyle: Paramstyle = "qmark") -> str:
    """One row: checked_rows, vwap_outside_range, hhi_out_of_range, insane_rows."""
    dates = date_placeholders(date_count, paramstyle)
    vwap_bad = (
        f"vwap < low * {1 - SANITY_TOLERANCE:.12f} OR vwap > high * {1 + SANITY_TOLERANCE:.12f}"
    )
    hhi_bad = f"venue_hhi < 0 OR venue_hhi > {HHI_MAX * (1 + SANITY_TOLERANCE):.6f}"
    return f"""SELECT COUNT(*) AS checked_rows,
       COALESCE(SUM(CASE WHEN {vwap_bad} THEN 1 ELSE 0 END), 0) AS vwap_outside_range,
       COALESCE(SUM(CASE WHEN {hhi_bad} THEN 1 ELSE 0 END), 0) AS hhi_out_of_range,
       COALESCE(SUM(CASE WHEN {vwap_bad} OR {hhi_bad} THEN 1 ELSE 0 END), 0) AS insane_rows
FROM otc_metrics_daily
WHERE trade_date IN ({dates})"""
