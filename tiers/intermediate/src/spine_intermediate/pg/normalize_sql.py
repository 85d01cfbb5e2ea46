"""The set-based fast path of `PostgresOtcStore.normalize_batch`: one statement per batch.

`spine_otc.normalize.normalize_line` stays the authority on every line. This statement only
turns into trades, inside PostgreSQL, the lines it can prove `normalize_line` accepts, with the
values `normalize_line` would give them; it is deliberately narrower than the rules (no blanks
around fields, at most 11 characters of size or price so no digit limit and no rounding of the
notional can come into play) and hands every other line back, in line order, for Python to
decide. The conformance suite's property test compares the two line by line.

Parameters: `$1` batch id, `$2` the batch's source key, `$3` whether to use the fast path at
all (false hands every line back: a normalizer other than `normalize_line`), `$4` and `$5` the
line numbers to work on, from (included) and to (excluded), `$6` the batch's number (its raw
lines' key in `otc_raw_lines`). Rows out: one
`(NULL, NULL, trade_date, n)` per date with the count of trades inserted, then the
`(line_number, raw_line, NULL, NULL)` of every line handed back.

Written for PostgreSQL's speed on a million lines: one regular expression per line, with only
character classes and unbounded repeats (bounds and finer classes make its engine several
times slower), and everything else as equality, `LIKE` and `BETWEEN` on fields split once.
"""

from __future__ import annotations

from spine_otc.layout import DELIMITER, SESSION_END, SESSION_START, SHORT_TYPES, VENUES

_D = "\\" + DELIMITER
CHARACTERS = f"^[A-Z]{_D}[A-Z0-9./]+{_D}[0-9]+{_D}[0-9:]+{_D}[A-Z]{_D}[0-9.]+{_D}[0-9.]+{_D}"
"""Seven fields made only of the characters their values may hold, no blanks, then a delimiter."""
MAX_NUMBER_CHARS = 11
"""Size and price at most this long: within `_DECIMAL`'s 15.10 digits, and a notional of at
most 22 digits, exact under Python's 28-digit decimal context as it is in PostgreSQL."""
_NINE_FIELDS = "%" + "%".join(DELIMITER * 8) + "%"
_FIELDS = ("venue", "symbol", "day", "time", "short_type", "size", "price")


def _sql_list(values: object) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _number_checks(field: str) -> str:
    # digits and dots by CHARACTERS: one dot at most, inside, and some digit not zero
    return (
        f"length({field}) <= {MAX_NUMBER_CHARS} AND {field} NOT LIKE '.%' "
        f"AND {field} NOT LIKE '%.' AND {field} NOT LIKE '%.%.%' "
        f"AND ltrim(replace({field}, '.', ''), '0') <> ''"
    )


_YEAR = "substr(day, 1, 4)::int"
_DAYS_IN_MONTH = (
    "CASE substr(day, 5, 2) WHEN '01' THEN 31 WHEN '02' THEN "
    f"CASE WHEN {_YEAR} % 4 = 0 AND ({_YEAR} % 100 <> 0 OR {_YEAR} % 400 = 0) THEN 29 ELSE 28 END "
    "WHEN '03' THEN 31 WHEN '04' THEN 30 WHEN '05' THEN 31 WHEN '06' THEN 30 WHEN '07' THEN 31 "
    "WHEN '08' THEN 31 WHEN '09' THEN 30 WHEN '10' THEN 31 WHEN '11' THEN 30 WHEN '12' THEN 31 "
    "ELSE 0 END"
)
_CLEAN = f"""CASE WHEN $3 AND raw_line ~ '{CHARACTERS}'
        AND raw_line NOT LIKE '{_NINE_FIELDS}'
    THEN venue IN ({_sql_list(VENUES)}) AND short_type IN ({_sql_list(SHORT_TYPES)})
        AND length(symbol) <= 14
        AND time LIKE '__:__:__' AND length(replace(time, ':', '')) = 6
        AND substr(time, 4, 1) <= '5' AND substr(time, 7, 1) <= '5'
        AND time COLLATE "C" BETWEEN '{SESSION_START}' AND '{SESSION_END}'
        AND {_number_checks("size")} AND {_number_checks("price")}
        AND CASE WHEN length(day) = 8
            THEN {_YEAR} >= 1 AND substr(day, 7, 2)::int BETWEEN 1 AND {_DAYS_IN_MONTH}
            ELSE false END
    ELSE false END"""
"""True only for lines `normalize_line` certainly turns into a trade. The CASEs order the
checks: each cast runs only on digits of the length it expects, or it would raise."""
_SPLIT = ", ".join(
    f"split_part(raw_line, '{DELIMITER}', {n}) AS {name}" for n, name in enumerate(_FIELDS, 1)
)

NORMALIZE_SQL = f"""
WITH lines AS (
    SELECT line_number, raw_line, {", ".join(_FIELDS)}, {_CLEAN} AS clean
    FROM (
        SELECT line_number, raw_line, {_SPLIT}
        FROM otc_raw_lines
        WHERE batch_no = $6 AND line_number >= $4 AND line_number < $5
        OFFSET 0  -- a fence: split each line once
    ) fields
), inserted AS (
    INSERT INTO otc_trades (source_key, line_number, batch_id, trade_date, trade_time, symbol,
                            venue, short_type, size, price, notional)
    SELECT $2, line_number, $1, trade_date, time, symbol, venue, short_type, size, price,
           size * price
    FROM (
        SELECT line_number, time, symbol, venue, short_type,
               make_date({_YEAR}, substr(day, 5, 2)::int, substr(day, 7, 2)::int) AS trade_date,
               size::numeric AS size, price::numeric AS price
        FROM lines WHERE clean OFFSET 0  -- a fence: cast each number once
    ) typed
    RETURNING trade_date
)
(SELECT NULL::integer, NULL::text, trade_date, count(*) FROM inserted GROUP BY trade_date)
UNION ALL
(SELECT line_number, raw_line, NULL, NULL FROM lines WHERE NOT clean ORDER BY line_number)
"""
