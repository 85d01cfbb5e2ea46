"""The set-based fast path of `PostgresOtcStore.normalize_batch`: one statement per batch.

`spine_otc.normalize.normalize_line` stays the authority on every line. This statement only
turns into trades, inside PostgreSQL, the lines it can prove `normalize_line` accepts, with the
values `normalize_line` would give them; it is deliberately narrower than the rules (no blanks
around fields, at most 11 characters of size or price so no digit limit and no rounding of the
notional can come into play) and hands every other line back, in line order, for Python to
decide. The conformance suite's property test compares the two line by line.

Parameters: `$1` batch id, `$2` the batch's source key, `$3` whether to use the fast path at
all (false hands every line back: a normalizer other than `normalize_line`). Rows out: one
`(NULL, NULL, trade_date, n)` per date with the count of trades inserted, then the
`(line_number, raw_line, NULL, NULL)` of every line handed back.
"""

from __future__ import annotations

from spine_otc.layout import DELIMITER, SESSION_END, SESSION_START, SHORT_TYPES, VENUES

_D = "\\" + DELIMITER
_NUMBER = "[0-9]+(\\.[0-9]+)?"
LINE_PATTERN = (
    f"^[{''.join(VENUES)}]{_D}[A-Z0-9./]+{_D}[0-9]+{_D}[0-9][0-9]:[0-5][0-9]:[0-5][0-9]"
    f"{_D}[{''.join(SHORT_TYPES)}]{_D}{_NUMBER}{_D}{_NUMBER}{_D}[^{DELIMITER}]*$"
)
"""The shape of a clean line: eight fields, no blanks, code sets, digits where digits go.

Unbounded repetitions only: PostgreSQL's regex engine is several times slower with `{m,n}`
bounds, so lengths are checked with `length()` below.
"""
MAX_NUMBER_CHARS = 11
"""Size and price at most this long: within `_DECIMAL`'s 15.10 digits, and a notional of at
most 22 digits, exact under Python's 28-digit decimal context as it is in PostgreSQL."""


def _field(n: int) -> str:
    return f"split_part(raw_line, '{DELIMITER}', {n})"


_DATE = _field(3)
_YEAR = f"substr({_DATE}, 1, 4)::int"
_DAYS_IN_MONTH = (
    f"CASE substr({_DATE}, 5, 2) WHEN '01' THEN 31 WHEN '02' THEN "
    f"CASE WHEN {_YEAR} % 4 = 0 AND ({_YEAR} % 100 <> 0 OR {_YEAR} % 400 = 0) THEN 29 ELSE 28 END "
    "WHEN '03' THEN 31 WHEN '04' THEN 30 WHEN '05' THEN 31 WHEN '06' THEN 30 WHEN '07' THEN 31 "
    "WHEN '08' THEN 31 WHEN '09' THEN 30 WHEN '10' THEN 31 WHEN '11' THEN 30 WHEN '12' THEN 31 "
    "ELSE 0 END"
)
_CLEAN = f"""CASE WHEN $3 AND raw_line ~ '{LINE_PATTERN}' THEN
        length({_field(2)}) <= 14
        AND {_field(4)} COLLATE "C" BETWEEN '{SESSION_START}' AND '{SESSION_END}'
        AND length({_field(6)}) <= {MAX_NUMBER_CHARS}
        AND length({_field(7)}) <= {MAX_NUMBER_CHARS}
        AND ltrim(replace({_field(6)}, '.', ''), '0') <> ''
        AND ltrim(replace({_field(7)}, '.', ''), '0') <> ''
        AND CASE WHEN length({_DATE}) = 8
            THEN {_YEAR} >= 1 AND substr({_DATE}, 7, 2)::int BETWEEN 1 AND {_DAYS_IN_MONTH}
            ELSE false END
    ELSE false END"""
"""True only for lines `normalize_line` certainly turns into a trade. The CASEs order the
checks: each cast runs only on digits of the length it expects, or it would raise."""

NORMALIZE_SQL = f"""
WITH lines AS (
    SELECT line_number, raw_line, {_CLEAN} AS clean
    FROM otc_trades_raw WHERE batch_id = $1
), inserted AS (
    INSERT INTO otc_trades (source_key, line_number, batch_id, trade_date, trade_time, symbol,
                            venue, short_type, size, price, notional)
    SELECT $2, line_number, $1,
           make_date(substr(d, 1, 4)::int, substr(d, 5, 2)::int, substr(d, 7, 2)::int),
           t, s, v, st, sz::numeric, pr::numeric, sz::numeric * pr::numeric
    FROM (
        SELECT line_number, {_field(1)} AS v, {_field(2)} AS s, {_field(3)} AS d,
               {_field(4)} AS t, {_field(5)} AS st, {_field(6)} AS sz, {_field(7)} AS pr
        FROM lines WHERE clean OFFSET 0  -- a fence: split each field once, not per use
    ) fields
    RETURNING trade_date
)
(SELECT NULL::integer, NULL::text, trade_date, count(*) FROM inserted GROUP BY trade_date)
UNION ALL
(SELECT line_number, raw_line, NULL, NULL FROM lines WHERE NOT clean ORDER BY line_number)
"""
