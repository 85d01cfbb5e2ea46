"""The `otc_metrics_daily` row, and a pure-Python reference that computes it.

The databases compute these metrics set-based (see `spine_otc.sql`); `compute_daily_metrics`
is the oracle their tests compare against, and what the in-memory store uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from spine_core.quality import QualityMetrics
from spine_otc.normalize import Trade

SANITY_TOLERANCE = 1e-9
"""Relative slack for the sanity checks, so float rounding in a database is not an error."""

HHI_MAX = 10_000


@dataclass(frozen=True)
class DailyMetrics:
    """One `otc_metrics_daily` row: a symbol's trading on one date."""

    trade_date: str
    symbol: str
    trade_count: int
    volume: float
    notional: float
    vwap: float
    high: float
    low: float
    first_price: float
    last_price: float
    venue_count: int
    venue_hhi: float
    short_exempt_share: float
    regular_hours_volume: float
    extended_hours_volume: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | Sequence[Any]) -> DailyMetrics:
        """Build from a database row (by column name, or in `METRIC_FIELDS` order).

        Dates may arrive as `date` or text and numbers as Decimal, int or float.
        """
        values = [row[name] for name in METRIC_FIELDS] if isinstance(row, Mapping) else list(row)
        if len(values) != len(METRIC_FIELDS):
            raise ValueError(f"expected {len(METRIC_FIELDS)} values, got {len(values)}")
        converted: list[Any] = []
        for name, value in zip(METRIC_FIELDS, values, strict=True):
            if isinstance(value, date):
                converted.append(value.isoformat())
            elif name in _TEXT_FIELDS:
                converted.append(str(value))
            elif name in _COUNT_FIELDS:
                converted.append(int(value))
            else:
                converted.append(float(value))
        return cls(*converted)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON numbers, rounded for people: prices 4 dp, VWAP 6 dp, HHI 4 dp, share 6 dp."""
        return {
            "trade_date": self.trade_date,
            "symbol": self.symbol,
            "trade_count": self.trade_count,
            "volume": _quantity(self.volume),
            "notional": round(self.notional, 4),
            "vwap": round(self.vwap, 6),
            "high": round(self.high, 4),
            "low": round(self.low, 4),
            "first_price": round(self.first_price, 4),
            "last_price": round(self.last_price, 4),
            "venue_count": self.venue_count,
            "venue_hhi": round(self.venue_hhi, 4),
            "short_exempt_share": round(self.short_exempt_share, 6),
            "regular_hours_volume": _quantity(self.regular_hours_volume),
            "extended_hours_volume": _quantity(self.extended_hours_volume),
        }


METRIC_FIELDS = tuple(spec.name for spec in dataclasses.fields(DailyMetrics))
"""The `otc_metrics_daily` columns, in order."""

_TEXT_FIELDS = frozenset({"trade_date", "symbol"})
_COUNT_FIELDS = frozenset({"trade_count", "venue_count"})


def _quantity(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 6)


def metrics_are_sane(metrics: DailyMetrics) -> bool:
    """VWAP within [low, high] and HHI within 0..10,000 (with float slack)."""
    return vwap_in_range(metrics) and hhi_in_range(metrics)


def vwap_in_range(metrics: DailyMetrics) -> bool:
    """A volume-weighted average must lie between the lowest and highest price."""
    return (
        metrics.low * (1 - SANITY_TOLERANCE)
        <= metrics.vwap
        <= metrics.high * (1 + SANITY_TOLERANCE)
    )


def hhi_in_range(metrics: DailyMetrics) -> bool:
    """The venue HHI of shares in percent is between 0 and 10,000."""
    return 0 <= metrics.venue_hhi <= HHI_MAX * (1 + SANITY_TOLERANCE)


def sanity_quality(
    checked_rows: int, vwap_outside_range: int, hhi_out_of_range: int, insane_rows: int
) -> QualityMetrics:
    """The quality of a metrics recompute, from the counts `metrics_sanity_sql` returns."""
    return QualityMetrics(
        record_count=int(checked_rows),
        valid_count=int(checked_rows) - int(insane_rows),
        invalid_count=int(insane_rows),
        custom={
            "vwap_outside_range": float(vwap_outside_range),
            "hhi_out_of_range": float(hhi_out_of_range),
        },
    )


def check_sanity(metrics: Iterable[DailyMetrics]) -> QualityMetrics:
    """`sanity_quality` computed in Python, for stores without SQL."""
    rows = vwap_bad = hhi_bad = insane = 0
    for row in metrics:
        rows += 1
        vwap_ok, hhi_ok = vwap_in_range(row), hhi_in_range(row)
        vwap_bad += not vwap_ok
        hhi_bad += not hhi_ok
        insane += not (vwap_ok and hhi_ok)
    return sanity_quality(rows, vwap_bad, hhi_bad, insane)


class _DayAccumulator:
    """Running totals for one (date, symbol), exact in Decimal."""

    def __init__(self) -> None:
        self.trade_count = 0
        self.volume = Decimal(0)
        self.notional = Decimal(0)
        self.exempt_volume = Decimal(0)
        self.regular_volume = Decimal(0)
        self.extended_volume = Decimal(0)
        self.venue_volume: dict[str, Decimal] = {}
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.first: tuple[Any, Decimal] | None = None
        self.last: tuple[Any, Decimal] | None = None

    def add(self, order: Any, trade: Trade) -> None:
        self.trade_count += 1
        self.volume += trade.size
        self.notional += trade.notional
        if trade.short_type == "E":
            self.exempt_volume += trade.size
        if trade.is_regular_hours:
            self.regular_volume += trade.size
        else:
            self.extended_volume += trade.size
        self.venue_volume[trade.venue] = self.venue_volume.get(trade.venue, 0) + trade.size
        self.high = trade.price if self.high is None else max(self.high, trade.price)
        self.low = trade.price if self.low is None else min(self.low, trade.price)
        key = (trade.trade_time, order)
        if self.first is None or key < self.first[0]:
            self.first = (key, trade.price)
        if self.last is None or key > self.last[0]:
            self.last = (key, trade.price)

    def result(self, trade_date: date, symbol: str) -> DailyMetrics:
        assert self.high is not None and self.low is not None
        assert self.first is not None and self.last is not None
        hhi = sum((100 * v / self.volume) ** 2 for v in self.venue_volume.values())
        return DailyMetrics(
            trade_date=trade_date.isoformat(),
            symbol=symbol,
            trade_count=self.trade_count,
            volume=float(self.volume),
            notional=float(self.notional),
            vwap=float(self.notional / self.volume),
            high=float(self.high),
            low=float(self.low),
            first_price=float(self.first[1]),
            last_price=float(self.last[1]),
            venue_count=len(self.venue_volume),
            venue_hhi=float(hhi),
            short_exempt_share=float(self.exempt_volume / self.volume),
            regular_hours_volume=float(self.regular_volume),
            extended_hours_volume=float(self.extended_volume),
        )


def compute_daily_metrics(trades: Iterable[tuple[Any, Trade]]) -> list[DailyMetrics]:
    """Metrics per (date, symbol), sorted by date then symbol.

    Each trade comes with its order key: the line number for one file, or
    `(source_key, line_number)` across files. First and last price go by trade time, ties by
    that key, exactly as the SQL orders by `trade_time, source_key, line_number`.
    """
    days: dict[tuple[date, str], _DayAccumulator] = {}
    for order, trade in trades:
        key = (trade.trade_date, trade.symbol)
        if key not in days:
            days[key] = _DayAccumulator()
        days[key].add(order, trade)
    return [days[key].result(*key) for key in sorted(days)]
