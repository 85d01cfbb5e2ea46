from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spine_otc.metrics import (
    METRIC_FIELDS,
    DailyMetrics,
    check_sanity,
    compute_daily_metrics,
    metrics_are_sane,
)
from spine_otc.normalize import Trade, normalize_line

HAND_DAY = [
    "Q|XYZ|20240305|09:30:00|S|100|10.00|A",
    "N|XYZ|20240305|10:00:00|E|200|10.50|A",
    "Q|XYZ|20240305|16:00:00|S|100|11.00|A",
    "Q|XYZ|20240305|09:30:00|S|50|9.00|A",
    "B|XYZ|20240305|04:00:00|S|50|9.50|A",
    "N|XYZ|20240305|16:00:00|S|50|10.80|A",
    "D|ABC|20240306|12:00:00|S|10|5|",
]


def hand_metrics():
    return compute_daily_metrics(
        (line_number, normalize_line(line)) for line_number, line in enumerate(HAND_DAY, start=2)
    )


def test_hand_computed_day():
    xyz, abc = hand_metrics()
    # volume 100+200+100+50+50+50; notional 1000+2100+1100+450+475+540
    assert (xyz.trade_date, xyz.symbol, xyz.trade_count) == ("2024-03-05", "XYZ", 6)
    assert xyz.volume == 550
    assert xyz.notional == 5665
    assert xyz.vwap == pytest.approx(10.3)
    assert (xyz.high, xyz.low) == (11.0, 9.0)
    # earliest is the 04:00:00 print; the two 16:00:00 prints tie, the later line wins
    assert (xyz.first_price, xyz.last_price) == (9.5, 10.8)
    # Q 250, N 250, B 50 of 550: shares 500/11 %, 500/11 %, 100/11 %
    assert xyz.venue_count == 3
    assert xyz.venue_hhi == pytest.approx(510_000 / 121)
    assert xyz.short_exempt_share == pytest.approx(4 / 11)
    # regular hours are 09:30:00 <= t < 16:00:00: 100 + 200 + 50
    assert (xyz.regular_hours_volume, xyz.extended_hours_volume) == (350, 200)

    assert abc == DailyMetrics("2024-03-06", "ABC", 1, 10, 50, 5, 5, 5, 5, 5, 1, 10_000, 0, 10, 0)


def test_json_numbers_are_rounded_for_people():
    xyz, _ = hand_metrics()
    assert xyz.to_json_dict() == {
        "trade_date": "2024-03-05",
        "symbol": "XYZ",
        "trade_count": 6,
        "volume": 550,
        "notional": 5665.0,
        "vwap": 10.3,
        "high": 11.0,
        "low": 9.0,
        "first_price": 9.5,
        "last_price": 10.8,
        "venue_count": 3,
        "venue_hhi": 4214.876,
        "short_exempt_share": 0.363636,
        "regular_hours_volume": 350,
        "extended_hours_volume": 200,
    }
    assert list(xyz.to_json_dict()) == list(METRIC_FIELDS)


def test_fractional_volumes_stay_floats_in_json():
    [m] = compute_daily_metrics([(2, normalize_line("Q|A|20240305|10:00:00|S|0.5|2|"))])
    assert m.to_json_dict()["volume"] == 0.5


def test_from_row_accepts_database_types():
    row = (date(2024, 3, 5), "XYZ", 6, Decimal(550), Decimal("5665.0000"), Decimal("10.3"),
           11, 9, 9.5, 10.8, 3, 4214.876, Decimal("0.36"), 350, 200)  # fmt: skip
    by_position = DailyMetrics.from_row(row)
    assert by_position.trade_date == "2024-03-05"
    assert by_position.volume == 550.0 and isinstance(by_position.volume, float)
    assert DailyMetrics.from_row(dict(zip(METRIC_FIELDS, row, strict=True))) == by_position
    with pytest.raises(ValueError):
        DailyMetrics.from_row(row[:-1])


def test_sanity_checks():
    xyz, _ = hand_metrics()
    assert metrics_are_sane(xyz)
    assert not metrics_are_sane(DailyMetrics(**{**xyz.__dict__, "vwap": 11.5}))
    assert not metrics_are_sane(DailyMetrics(**{**xyz.__dict__, "venue_hhi": 10_001.0}))
    assert not metrics_are_sane(DailyMetrics(**{**xyz.__dict__, "venue_hhi": -1.0}))
    quality = check_sanity([xyz, DailyMetrics(**{**xyz.__dict__, "vwap": 1.0})])
    assert (quality.record_count, quality.invalid_count) == (2, 1)
    assert quality.custom == {"vwap_outside_range": 1.0, "hhi_out_of_range": 0.0}


trades = st.lists(
    st.builds(
        Trade,
        trade_date=st.sampled_from([date(2024, 3, 4), date(2024, 3, 5)]),
        trade_time=st.sampled_from(["04:00:00", "09:30:00", "12:00:00", "16:00:00", "20:00:00"]),
        symbol=st.sampled_from(["A", "B"]),
        venue=st.sampled_from("QBNDO"),
        short_type=st.sampled_from("SE"),
        size=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=4),
        price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**5), places=4),
    ),
    min_size=1,
    max_size=60,
)


def numbered(items):
    return list(enumerate(items, start=2))


@given(trades)
def test_vwap_lies_within_low_and_high(items):
    for m in compute_daily_metrics(numbered(items)):
        assert m.low <= m.vwap <= m.high
        assert 0 < m.venue_hhi <= 10_000
        assert 0 <= m.short_exempt_share <= 1
        assert metrics_are_sane(m)


@given(trades)
def test_volumes_add_up(items):
    days = compute_daily_metrics(numbered(items))
    assert sum(m.trade_count for m in days) == len(items)
    assert sum(m.volume for m in days) == pytest.approx(float(sum(t.size for t in items)))
    for m in days:
        assert m.regular_hours_volume + m.extended_hours_volume == pytest.approx(m.volume)


@given(trades)
def test_per_venue_volumes_sum_to_the_day_and_make_the_hhi(items):
    days = {(m.trade_date, m.symbol): m for m in compute_daily_metrics(numbered(items))}
    per_venue = {}
    for venue in "QBNDO":
        subset = [(n, t) for n, t in numbered(items) if t.venue == venue]
        for m in compute_daily_metrics(subset):
            per_venue.setdefault((m.trade_date, m.symbol), []).append(m.volume)
    for key, m in days.items():
        volumes = per_venue[key]
        assert len(volumes) == m.venue_count
        assert sum(volumes) == pytest.approx(m.volume)
        assert sum((100 * v / m.volume) ** 2 for v in volumes) == pytest.approx(m.venue_hhi)


@given(trades)
def test_input_order_does_not_matter_given_line_numbers(items):
    forward = compute_daily_metrics(numbered(items))
    assert compute_daily_metrics(reversed(numbered(items))) == forward
