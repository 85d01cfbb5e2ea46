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
    """A SELECT of the `METRIC_FIELDS` columns for every (date, symbol) traded on the dates."""
    dates = date_placeholders(date_count, paramstyle)
    regular = f"trade_time >= '{REGULAR_HOURS_START}' AND trade_time < '{REGULAR_HOURS_END}'"
    return f"""WITH day_trades AS (
    SELECT trade_date, trade_time, symbol, venue, short_type, size, price, notional,
           source_key, line_number
    FROM otc_trades
    WHERE trade_date IN ({dates})
),
ranked AS (
    SELECT trade_date, symbol, price,
           ROW_NUMBER() OVER (
               PARTITION BY trade_date, symbol
               ORDER BY trade_time, source_key, line_number
           ) AS from_open,
           ROW_NUMBER() OVER (
               PARTITION BY trade_date, symbol
               ORDER BY trade_time DESC, source_key DESC, line_number DESC
           ) AS from_close
    FROM day_trades
),
endpoints AS (
    SELECT trade_date, symbol,
           MAX(CASE WHEN from_open = 1 THEN price END) AS first_price,
           MAX(CASE WHEN from_close = 1 THEN price END) AS last_price
    FROM ranked
    WHERE from_open = 1 OR from_close = 1
    GROUP BY trade_date, symbol
),
totals AS (
    SELECT trade_date, symbol,
           COUNT(*) AS trade_count,
           SUM(size) AS volume,
           SUM(notional) AS notional,
           MAX(price) AS high,
           MIN(price) AS low,
           SUM(CASE WHEN short_type = 'E' THEN size ELSE 0 END) AS exempt_volume,
           SUM(CASE WHEN {regular} THEN size ELSE 0 END) AS regular_hours_volume,
           SUM(CASE WHEN {regular} THEN 0 ELSE size END) AS extended_hours_volume
    FROM day_trades
    GROUP BY trade_date, symbol
),
venue_volumes AS (
    SELECT trade_date, symbol, venue, SUM(size) AS venue_volume
    FROM day_trades
    GROUP BY trade_date, symbol, venue
),
concentration AS (
    SELECT v.trade_date, v.symbol,
           COUNT(*) AS venue_count,
           SUM((100.0 * v.venue_volume / t.volume) * (100.0 * v.venue_volume / t.volume))
               AS venue_hhi
    FROM venue_volumes v
    JOIN totals t ON t.trade_date = v.trade_date AND t.symbol = v.symbol
    GROUP BY v.trade_date, v.symbol
)
SELECT t.trade_date,
       t.symbol,
       t.trade_count,
       t.volume,
       t.notional,
       1.0 * t.notional / t.volume AS vwap,
       t.high,
       t.low,
       e.first_price,
       e.last_price,
       c.venue_count,
       c.venue_hhi,
       1.0 * t.exempt_volume / t.volume AS short_exempt_share,
       t.regular_hours_volume,
       t.extended_hours_volume
FROM totals t
JOIN endpoints e ON e.trade_date = t.trade_date AND e.symbol = t.symbol
JOIN concentration c ON c.trade_date = t.trade_date AND c.symbol = t.symbol
ORDER BY t.trade_date, t.symbol"""


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
