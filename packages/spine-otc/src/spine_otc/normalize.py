"""Turn one raw line into a typed `Trade`, or a `Reject` that says exactly what is wrong."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from spine_core.quality import QualityMetrics
from spine_otc.layout import (
    DELIMITER,
    FIELD_COUNT,
    HEADER_FIELDS,
    REQUIRED_FIELD_COUNT,
    SESSION_END,
    SESSION_START,
    SHORT_TYPES,
    SYMBOL_PATTERN,
    VENUES,
    is_regular_hours,
)

_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,10})?")


class RejectReason(StrEnum):
    """Why a row was rejected; the codes are stable, stored, and counted by the reject gate."""

    FIELD_COUNT = "FIELD_COUNT"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_DATE = "BAD_DATE"
    BAD_TIME = "BAD_TIME"
    TIME_OUT_OF_HOURS = "TIME_OUT_OF_HOURS"
    BAD_SYMBOL = "BAD_SYMBOL"
    BAD_VENUE = "BAD_VENUE"
    BAD_SHORT_TYPE = "BAD_SHORT_TYPE"
    BAD_SIZE = "BAD_SIZE"
    BAD_PRICE = "BAD_PRICE"


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that failed validation: kept with its reason, never silently dropped."""

    reason: RejectReason
    message: str


@dataclass(frozen=True, slots=True)
class Trade:
    """One validated trade print. Identical rows are distinct trades: nothing deduplicates."""

    trade_date: date
    trade_time: str
    symbol: str
    venue: str
    short_type: str
    size: Decimal
    price: Decimal
    notional: Decimal = field(init=False)
    timestamp: str = field(init=False)
    is_regular_hours: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notional", self.size * self.price)
        object.__setattr__(self, "timestamp", f"{self.trade_date.isoformat()}T{self.trade_time}")
        object.__setattr__(self, "is_regular_hours", is_regular_hours(self.trade_time))


class _Invalid(Exception):
    def __init__(self, reason: RejectReason, message: str) -> None:
        self.reject = Reject(reason, message)


_CACHE_LIMIT = 100_000
"""Most entries each memo below keeps; past it the memo starts over (memory stays bounded)."""
_valid_dates: dict[str, date] = {}
_valid_times: set[str] = set()
_valid_symbols: set[str] = set()
_valid_sizes: dict[str, Decimal] = {}


def forget_seen_values() -> None:
    """Empty the memos of values seen valid.

    Results never depend on them, but a test that checks a rule must reach the rule: the test
    suite calls this before every test, so a value another test proved valid cannot skip the
    check under test (nor hide a broken rule from mutation testing).
    """
    for memo in (
        _valid_dates,
        _valid_times,
        _valid_symbols,
        _valid_sizes,
        _iso_dates,
        _size_values,
    ):
        memo.clear()


def _remember(memo: dict | set, limit: int = _CACHE_LIMIT) -> dict | set:
    if len(memo) >= limit:
        memo.clear()
    return memo


def normalize_line(raw_line: str) -> Trade | Reject:
    """Validate one data line (fields stripped of surrounding blanks) against the layout.

    Valid lines take a fast path that remembers dates, times, symbols and sizes already seen
    valid (a file repeats them endlessly); anything it does not accept outright goes through
    the full checks, which decide the reject reason and message.
    """
    fields = raw_line.split(DELIMITER)
    if len(fields) == FIELD_COUNT:
        venue = fields[0].strip()
        symbol = fields[1].strip()
        raw_date = fields[2].strip()
        raw_time = fields[3].strip()
        short_type = fields[4].strip()
        raw_size = fields[5].strip()
        raw_price = fields[6].strip()
        try:
            if venue not in VENUES or short_type not in SHORT_TYPES:
                raise _Invalid(RejectReason.BAD_VENUE, "")
            if symbol not in _valid_symbols:
                if not SYMBOL_PATTERN.fullmatch(symbol):
                    raise _Invalid(RejectReason.BAD_SYMBOL, "")
                _remember(_valid_symbols).add(symbol)
            trade_date = _valid_dates.get(raw_date)
            if trade_date is None:
                trade_date = _parse_date(raw_date)
                _remember(_valid_dates)[raw_date] = trade_date
            if raw_time not in _valid_times:
                _parse_time(raw_time)
                _remember(_valid_times).add(raw_time)
            size = _valid_sizes.get(raw_size)
            if size is None:
                size = _parse_positive(raw_size, "Size", RejectReason.BAD_SIZE)
                if "." not in raw_size:  # whole sizes repeat; fractional ones rarely do
                    _remember(_valid_sizes)[raw_size] = size
            price = _parse_positive(raw_price, "Price", RejectReason.BAD_PRICE)
        except _Invalid:
            pass  # the full checks below find the first problem and describe it
        else:
            return Trade(trade_date, raw_time, symbol, venue, short_type, size, price)
    return _checked(raw_line)


TradeValues = tuple[str, str, str, str, str, float, float, float, str, str]
"""A trade as a store writes it: trade date (ISO), trade time, symbol, venue, short type, size,
price and notional as floats, then size and price as exact decimal text. The timestamp is not
one of them: it is the date and time, which a store joins itself."""


def trade_values_of(trade: Trade) -> TradeValues:
    """The values a store writes for a trade: the one conversion of a `Trade` to plain values."""
    day = trade.trade_date.isoformat()
    return (
        day,
        trade.trade_time,
        trade.symbol,
        trade.venue,
        trade.short_type,
        float(trade.size),
        float(trade.price),
        float(trade.notional),
        str(trade.size),
        str(trade.price),
    )


def _alternatives(codes: dict[str, str]) -> str:
    return "|".join(re.escape(code) for code in codes)


_POSITIVE = r"([1-9][0-9]{0,14}(?:\.[0-9]{1,10})?)"
"""`_DECIMAL` with a non-zero first digit: certainly > 0, and `str(Decimal(text)) == text`
(no leading zero to drop, no exponent), so the text is the exact decimal as stored."""
_SEP = re.escape(DELIMITER)
_PLAIN_LINE = re.compile(
    rf"({_alternatives(VENUES)}){_SEP}({SYMBOL_PATTERN.pattern}){_SEP}"
    rf"([0-9]{{8}}){_SEP}([0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}){_SEP}"
    rf"({_alternatives(SHORT_TYPES)}){_SEP}{_POSITIVE}{_SEP}{_POSITIVE}{_SEP}[^{_SEP}]*"
)
"""A data line with no blanks to strip, every field already in its valid shape."""
_iso_dates: dict[str, str] = {}
_size_values: dict[str, tuple[Decimal, float]] = {}


def trade_values(raw_line: str) -> TradeValues | None:
    """`trade_values_of(normalize_line(raw_line))` for a plainly valid line, else None.

    Most lines of a file are plainly valid: one regex match checks every field's shape, the
    memos of dates and times seen valid check the calendar and the window, and no `Trade` is
    built. None (padded fields, leading zeros, anything invalid) means: call `normalize_line`,
    which decides and explains. The values are computed as `Trade` computes them.
    """
    match = _PLAIN_LINE.fullmatch(raw_line)
    if match is None:
        return None
    venue, symbol, raw_date, raw_time, short_type, raw_size, raw_price = match.groups()
    day = _iso_dates.get(raw_date)
    if day is None:
        try:
            day = _parse_date(raw_date).isoformat()
        except _Invalid:
            return None
        _remember(_iso_dates)[raw_date] = day
    if raw_time not in _valid_times:
        try:
            _parse_time(raw_time)
        except _Invalid:
            return None
        _remember(_valid_times).add(raw_time)
    size = _size_values.get(raw_size)
    if size is None:
        size = (Decimal(raw_size), float(raw_size))
        if "." not in raw_size:  # whole sizes repeat; fractional ones rarely do
            _remember(_size_values)[raw_size] = size
    exact_size, float_size = size
    return (
        day,
        raw_time,
        symbol,
        venue,
        short_type,
        float_size,
        float(raw_price),
        float(exact_size * Decimal(raw_price)),
        raw_size,
        raw_price,
    )


def plain_values_for(
    normalizer: Callable[[str], Trade | Reject],
) -> Callable[[str], TradeValues | None] | None:
    """`trade_values` when `normalizer` is `normalize_line` (it reproduces its trades)."""
    return trade_values if normalizer is normalize_line else None


def _checked(raw_line: str) -> Trade | Reject:
    fields = [value.strip() for value in raw_line.split(DELIMITER)]
    if len(fields) != FIELD_COUNT:
        return Reject(
            RejectReason.FIELD_COUNT,
            f"expected {FIELD_COUNT} {DELIMITER!r}-separated fields, found {len(fields)}",
        )
    for name, value in zip(HEADER_FIELDS[:REQUIRED_FIELD_COUNT], fields, strict=False):
        if not value:
            return Reject(RejectReason.MISSING_FIELD, f"{name} is blank")
    venue, symbol, raw_date, raw_time, short_type, raw_size, raw_price, _link = fields
    try:
        if venue not in VENUES:
            raise _Invalid(
                RejectReason.BAD_VENUE, f"MarketCenter {venue!r} is not one of {', '.join(VENUES)}"
            )
        if not SYMBOL_PATTERN.fullmatch(symbol):
            raise _Invalid(
                RejectReason.BAD_SYMBOL,
                f"Symbol {symbol!r} must be 1-14 of A-Z, 0-9, '.' and '/'",
            )
        trade_date = _parse_date(raw_date)
        trade_time = _parse_time(raw_time)
        if short_type not in SHORT_TYPES:
            raise _Invalid(
                RejectReason.BAD_SHORT_TYPE,
                f"ShortType {short_type!r} is not one of {', '.join(SHORT_TYPES)}",
            )
        size = _parse_positive(raw_size, "Size", RejectReason.BAD_SIZE)
        price = _parse_positive(raw_price, "Price", RejectReason.BAD_PRICE)
    except _Invalid as invalid:
        return invalid.reject
    return Trade(trade_date, trade_time, symbol, venue, short_type, size, price)


def _parse_date(raw: str) -> date:
    match = _DATE.fullmatch(raw)
    try:
        if match is None:
            raise ValueError
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise _Invalid(
            RejectReason.BAD_DATE, f"Date {raw!r} is not a calendar date as YYYYMMDD"
        ) from None


def _parse_time(raw: str) -> str:
    match = _TIME.fullmatch(raw)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
        raise _Invalid(RejectReason.BAD_TIME, f"Time {raw!r} is not a time as HH:MM:SS")
    if not SESSION_START <= raw <= SESSION_END:
        raise _Invalid(
            RejectReason.TIME_OUT_OF_HOURS,
            f"Time {raw} is outside the reporting window {SESSION_START}-{SESSION_END}",
        )
    return raw


def _parse_positive(raw: str, name: str, reason: RejectReason) -> Decimal:
    if not _DECIMAL.fullmatch(raw):
        raise _Invalid(reason, f"{name} {raw!r} is not a plain decimal number")
    value = Decimal(raw)
    if value <= 0:
        raise _Invalid(reason, f"{name} {raw} must be greater than zero")
    return value


class NormalizeTally:
    """Counts what a normalization produced, for the reject-rate gate and the step's quality."""

    def __init__(self) -> None:
        self.rows = 0
        self.reasons: Counter[str] = Counter()

    def add(self, result: Trade | Reject) -> None:
        """Count one normalized row."""
        self.rows += 1
        if isinstance(result, Reject):
            self.reasons[result.reason.value] += 1

    def add_valid(self, count: int) -> None:
        """Count rows that became trades without a `Trade` object (`trade_values`)."""
        self.rows += count

    def quality(self) -> QualityMetrics:
        """Record, valid and invalid counts, with the reject count per reason code."""
        invalid = sum(self.reasons.values())
        return QualityMetrics(
            record_count=self.rows,
            valid_count=self.rows - invalid,
            invalid_count=invalid,
            failure_reasons=dict(sorted(self.reasons.items())),
        )


def refusal_detail(quality: QualityMetrics) -> str:
    """What a batch refused by the reject gate records as its detail."""
    return (
        f"refused by the quality gate: reject rate {quality.invalid_rate:.2%} "
        f"({quality.invalid_count} of {quality.record_count} rows)"
    )
