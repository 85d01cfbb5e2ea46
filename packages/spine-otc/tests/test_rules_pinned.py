"""OTC rules checked at their boundaries, so a rule moved by one cannot pass its tests."""

from __future__ import annotations

import json

import pytest

from spine_otc.metrics import DailyMetrics, check_sanity
from spine_otc.normalize import Reject, RejectReason, Trade, normalize_line


def line(time: str) -> str:
    return f"Q|AAPL|20240305|{time}|S|100|170.1200|A"


@pytest.mark.parametrize(
    ("time", "outcome"),
    [
        ("04:00:00", None),
        ("12:59:59", None),
        ("20:00:00", None),
        ("03:59:59", RejectReason.TIME_OUT_OF_HOURS),
        ("20:00:01", RejectReason.TIME_OUT_OF_HOURS),
        ("23:00:00", RejectReason.TIME_OUT_OF_HOURS),
        ("12:00:60", RejectReason.BAD_TIME),
        ("12:60:00", RejectReason.BAD_TIME),
        ("24:00:00", RejectReason.BAD_TIME),
        ("12:0:00", RejectReason.BAD_TIME),
    ],
)
def test_trade_times_at_the_edges(time, outcome):
    result = normalize_line(line(time))
    if outcome is None:
        assert isinstance(result, Trade) and result.trade_time == time
    else:
        assert isinstance(result, Reject) and result.reason is outcome


def metrics(vwap: float, hhi: float) -> DailyMetrics:
    return DailyMetrics(
        "2024-03-05", "AAPL", 6, 600.0, 6000.0, vwap, 11.0, 9.0, 10.0, 10.0, 2, hhi, 0.0, 600.0, 0.0
    )


def test_check_sanity_counts_the_bad_rows():
    rows = [
        metrics(10.0, 5000.0),
        metrics(10.5, 5000.0),
        metrics(12.0, 5000.0),  # VWAP above high
        metrics(8.0, 5000.0),  # VWAP below low
        metrics(10.0, 10_001.0),  # HHI above 10,000
        metrics(8.0, -1.0),  # both
    ]
    quality = check_sanity(rows)
    assert (quality.record_count, quality.valid_count, quality.invalid_count) == (6, 2, 4)
    assert quality.custom == {"vwap_outside_range": 3.0, "hhi_out_of_range": 2.0}


def test_counts_read_back_as_floats_stay_integers():
    row = dict(metrics(10.0, 5000.0).to_json_dict(), trade_count=6.0, venue_count=2.0)
    read = DailyMetrics.from_row(row)
    assert json.dumps([read.trade_count, read.venue_count]) == "[6, 2]"


def test_json_rounds_each_number_as_documented():
    x = 1.123456789123
    m = DailyMetrics(
        "2024-03-05", "AAPL", 6, 100.5 + x, 10 + x, x, 2 + x, x, x, x, 2, 10 + x, x, 7.0, x
    )
    assert m.to_json_dict() == {
        "trade_date": "2024-03-05",
        "symbol": "AAPL",
        "trade_count": 6,
        "volume": 101.623457,
        "notional": 11.1235,
        "vwap": 1.123457,
        "high": 3.1235,
        "low": 1.1235,
        "first_price": 1.1235,
        "last_price": 1.1235,
        "venue_count": 2,
        "venue_hhi": 11.1235,
        "short_exempt_share": 1.123457,
        "regular_hours_volume": 7,
        "extended_hours_volume": 1.123457,
    }
    assert json.dumps(m.to_json_dict()["regular_hours_volume"]) == "7"


def test_from_row_wants_every_column():
    with pytest.raises(ValueError, match=r"^expected 15 values, got 14$"):
        DailyMetrics.from_row(list(metrics(10.0, 0.0).to_json_dict().values())[:-1])


@pytest.mark.parametrize(
    ("vwap", "hhi", "vwap_bad", "hhi_bad"),
    [
        (9.0 * (1 - 1e-9), 0.0, 0, 0),  # VWAP at low, HHI at 0: both sane
        (11.0 * (1 + 1e-9), 10_000 * (1 + 1e-9), 0, 0),  # at high, at 10,000
        (0.5 * 9.0, 0.5, 1, 0),
        (10.0, 10_000 * (1 + 1e-8), 0, 1),
        (10.0, -1e-6, 0, 1),
    ],
)
def test_sanity_bounds_are_inclusive(vwap, hhi, vwap_bad, hhi_bad):
    quality = check_sanity([metrics(vwap, hhi)])
    assert quality.custom == {"vwap_outside_range": vwap_bad, "hhi_out_of_range": hhi_bad}
