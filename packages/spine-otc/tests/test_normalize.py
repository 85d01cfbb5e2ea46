from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spine_otc.normalize import (
    NormalizeTally,
    Reject,
    RejectReason,
    Trade,
    normalize_line,
    refusal_detail,
)

GOOD = "Q|AAPL|20240305|09:30:02|S|100|170.1200|A"


def with_field(index, value):
    fields = GOOD.split("|")
    fields[index] = value
    return "|".join(fields)


def test_a_valid_line_becomes_a_trade():
    trade = normalize_line(GOOD)
    assert trade == Trade(
        date(2024, 3, 5), "09:30:02", "AAPL", "Q", "S", Decimal(100), Decimal("170.12")
    )
    assert trade.timestamp == "2024-03-05T09:30:02"
    assert trade.notional == Decimal("17012.0000")
    assert trade.is_regular_hours


def test_fractional_size_blank_link_indicator_and_padding_are_fine():
    trade = normalize_line(" D | BRK.B |20240229|15:59:59|E|0.5| 12.25 |")
    assert isinstance(trade, Trade)
    assert (trade.venue, trade.symbol, trade.short_type) == ("D", "BRK.B", "E")
    assert trade.size == Decimal("0.5")
    assert trade.notional == Decimal("6.125")


@pytest.mark.parametrize(
    ("time", "regular"),
    [("04:00:00", False), ("09:29:59", False), ("09:30:00", True), ("15:59:59", True),
     ("16:00:00", False), ("20:00:00", False)],
)  # fmt: skip
def test_reporting_window_is_inclusive_and_regular_hours_half_open(time, regular):
    trade = normalize_line(with_field(3, time))
    assert isinstance(trade, Trade)
    assert trade.is_regular_hours is regular


@pytest.mark.parametrize(
    ("line", "reason", "fragment"),
    [
        ("Q|AAPL|20240305|09:30:02|S|100|170.12", RejectReason.FIELD_COUNT, "found 7"),
        (GOOD + "|extra", RejectReason.FIELD_COUNT, "found 9"),
        ("", RejectReason.FIELD_COUNT, "found 1"),
        ("Q,AAPL,20240305,09:30:02,S,100,170.12,A", RejectReason.FIELD_COUNT, "found 1"),
        (with_field(1, ""), RejectReason.MISSING_FIELD, "Symbol"),
        (with_field(0, "  "), RejectReason.MISSING_FIELD, "MarketCenter"),
        (with_field(6, ""), RejectReason.MISSING_FIELD, "Price"),
        (with_field(2, "20240230"), RejectReason.BAD_DATE, "20240230"),
        (with_field(2, "2024-03-05"), RejectReason.BAD_DATE, "YYYYMMDD"),
        (with_field(2, "20241305"), RejectReason.BAD_DATE, "20241305"),
        (with_field(3, "25:00:00"), RejectReason.BAD_TIME, "25:00:00"),
        (with_field(3, "9:30:02"), RejectReason.BAD_TIME, "HH:MM:SS"),
        (with_field(3, "10:60:00"), RejectReason.BAD_TIME, "10:60:00"),
        (with_field(3, "03:59:59"), RejectReason.TIME_OUT_OF_HOURS, "04:00:00-20:00:00"),
        (with_field(3, "20:00:01"), RejectReason.TIME_OUT_OF_HOURS, "20:00:01"),
        (with_field(1, "aapl"), RejectReason.BAD_SYMBOL, "'aapl'"),
        (with_field(1, "A" * 15), RejectReason.BAD_SYMBOL, "1-14"),
        (with_field(1, "AB-C"), RejectReason.BAD_SYMBOL, "AB-C"),
        (with_field(0, "X"), RejectReason.BAD_VENUE, "'X'"),
        (with_field(0, "q"), RejectReason.BAD_VENUE, "'q'"),
        (with_field(4, "Z"), RejectReason.BAD_SHORT_TYPE, "'Z'"),
        (with_field(5, "0"), RejectReason.BAD_SIZE, "greater than zero"),
        (with_field(5, "-100"), RejectReason.BAD_SIZE, "not a plain decimal"),
        (with_field(5, "1e3"), RejectReason.BAD_SIZE, "not a plain decimal"),
        (with_field(5, "NaN"), RejectReason.BAD_SIZE, "not a plain decimal"),
        (with_field(6, "0.0000"), RejectReason.BAD_PRICE, "greater than zero"),
        (with_field(6, "abc"), RejectReason.BAD_PRICE, "'abc'"),
        (with_field(6, "Infinity"), RejectReason.BAD_PRICE, "not a plain decimal"),
    ],
)
def test_each_problem_has_its_reason_code_and_message(line, reason, fragment):
    result = normalize_line(line)
    assert isinstance(result, Reject)
    assert result.reason is reason
    assert fragment in result.message


def test_every_reason_code_is_covered():
    lines = {
        RejectReason.FIELD_COUNT: "a|b",
        RejectReason.MISSING_FIELD: with_field(2, ""),
        RejectReason.BAD_DATE: with_field(2, "20230229"),
        RejectReason.BAD_TIME: with_field(3, "noon"),
        RejectReason.TIME_OUT_OF_HOURS: with_field(3, "00:00:00"),
        RejectReason.BAD_SYMBOL: with_field(1, "$"),
        RejectReason.BAD_VENUE: with_field(0, "A"),
        RejectReason.BAD_SHORT_TYPE: with_field(4, "s"),
        RejectReason.BAD_SIZE: with_field(5, "1,000"),
        RejectReason.BAD_PRICE: with_field(6, "-1"),
    }
    assert set(lines) == set(RejectReason)
    for reason, line in lines.items():
        assert normalize_line(line).reason is reason


def test_the_first_bad_field_decides_the_reason():
    line = "X|aapl|20240230|99:99:99|Z|0|0|"
    assert normalize_line(line).reason is RejectReason.BAD_VENUE


def test_tally_counts_rows_and_reasons():
    tally = NormalizeTally()
    for line in [GOOD, GOOD, with_field(0, "X"), "x", "y"]:
        tally.add(normalize_line(line))
    quality = tally.quality()
    assert (quality.record_count, quality.valid_count, quality.invalid_count) == (5, 2, 3)
    assert quality.failure_reasons == {"BAD_VENUE": 1, "FIELD_COUNT": 2}
    assert (
        refusal_detail(quality) == "refused by the quality gate: reject rate 60.00% (3 of 5 rows)"
    )


@given(st.lists(st.one_of(st.just(GOOD), st.text(max_size=60)), max_size=50))
def test_rejects_plus_trades_equal_rows(lines):
    tally = NormalizeTally()
    results = [normalize_line(line) for line in lines]
    for result in results:
        tally.add(result)
    quality = tally.quality()
    trades = sum(isinstance(r, Trade) for r in results)
    rejects = sum(isinstance(r, Reject) for r in results)
    assert trades + rejects == len(lines) == quality.record_count
    assert quality.valid_count == trades
    assert sum(quality.failure_reasons.values()) == rejects == quality.invalid_count
