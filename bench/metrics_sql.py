"""The metrics baseline: one hand-written GROUP BY, written here, not taken from spine_otc.sql.

It produces the `otc_metrics_daily` columns in a single grouped pass over the trades. Venue
concentration uses the five FINRA venue codes as conditional sums (so no second grouping is
needed); first and last price come from one window over the same rows.
"""

from __future__ import annotations

VENUE_CODES = ("Q", "B", "N", "D", "O")
COLUMNS = (
    "trade_date, symbol, trade_count, volume, notional, vwap, high, low, first_price, "
    "last_price, venue_count, venue_hhi, short_exempt_share, regular_hours_volume, "
    "extended_hours_volume"
)


def baseline_select(date_params: list[str] | None, table: str = "otc_trades") -> str:
    """The GROUP BY; `date_params` are the placeholders (`?` or `$1`...), None for every date."""
    where = f"WHERE trade_date IN ({', '.join(date_params)})" if date_params is not None else ""
    venue = [f"SUM(CASE WHEN venue = '{v}' THEN size ELSE 0 END)" for v in VENUE_CODES]
    squares = " + ".join(f"{v} * {v}" for v in venue)
    present = " + ".join(f"(CASE WHEN {v} > 0 THEN 1 ELSE 0 END)" for v in venue)
    regular = "trade_time >= '09:30:00' AND trade_time < '16:00:00'"
    return f"""SELECT trade_date, symbol,
       COUNT(*),
       SUM(size),
       SUM(notional),
       1.0 * SUM(notional) / SUM(size),
       MAX(price),
       MIN(price),
       MAX(first_price),
       MAX(last_price),
       {present},
       10000.0 * ({squares}) / (SUM(size) * SUM(size)),
       1.0 * SUM(CASE WHEN short_type = 'E' THEN size ELSE 0 END) / SUM(size),
       SUM(CASE WHEN {regular} THEN size ELSE 0 END),
       SUM(CASE WHEN {regular} THEN 0 ELSE size END)
FROM (
    SELECT trade_date, symbol, venue, short_type, trade_time, size, price, notional,
           FIRST_VALUE(price) OVER w AS first_price,
           LAST_VALUE(price) OVER w AS last_price
    FROM {table}
    {where}
    WINDOW w AS (PARTITION BY trade_date, symbol ORDER BY trade_time, source_key, line_number
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
) AS t
GROUP BY trade_date, symbol"""


def same_metrics(product: list[tuple], baseline: list[tuple], tolerance: float = 1e-6) -> bool:
    """Whether two metric tables (rows in COLUMNS order, sorted by date and symbol) agree."""
    if len(product) != len(baseline):
        return False
    for left, right in zip(product, baseline, strict=True):
        for a, b in zip(left, right, strict=True):
            if isinstance(a, int | float) or hasattr(a, "as_integer_ratio"):
                a, b = float(a), float(b)
                if abs(a - b) > tolerance * max(1.0, abs(a), abs(b)):
                    return False
            elif str(a) != str(b):
                return False
    return True
