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
