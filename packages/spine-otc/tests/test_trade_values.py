"""`trade_values` (the stores' fast path) against `normalize_line` (the rules)."""

import struct
from datetime import date

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from spine_otc.generator import generate
from spine_otc.layout import SHORT_TYPES, SYMBOL_PATTERN, VENUES
from spine_otc.normalize import (
    Reject,
    normalize_line,
    plain_values_for,
    trade_values,
    trade_values_of,
)
from spine_otc.parser import PsvReader


def exact(values):
    """Floats as their bits, so equal means bit for bit."""
    return tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in values)


def assert_same_as_normalize_line(line):
    fast = trade_values(line)
    result = normalize_line(line)
    if fast is None:
        return fast
    assert not isinstance(result, Reject), (line, result)
    assert exact(fast) == exact(trade_values_of(result))
    return fast


codes = st.one_of(st.sampled_from([*VENUES, *SHORT_TYPES, "q", "X", ""]))
symbols = st.one_of(st.from_regex(SYMBOL_PATTERN, fullmatch=True), st.text(max_size=16))
day_texts = st.one_of(
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
)
times = st.builds(
    "{:02d}:{:02d}:{:02d}".format,
    st.integers(0, 29),
    st.integers(0, 69),
    st.integers(0, 69),
)
decimals = st.one_of(
    st.from_regex(r"[0-9]{1,16}(\.[0-9]{0,11})?", fullmatch=True),
    st.decimals(min_value=0, max_value=10**15, places=10).map(str),
    st.text(max_size=12),
)
links = st.text(max_size=3).filter(lambda s: "|" not in s)


@settings(max_examples=2000)
@given(
    st.tuples(codes, symbols, day_texts, times, codes, decimals, decimals, links),
    st.lists(st.sampled_from(["", " "]), min_size=8, max_size=8),
)
@example(("Q", "AAPL", "20240305", "09:30:02", "S", "100", "170.1200", "A"), [""] * 8)
@example(("Q", "AAPL", "20240230", "09:30:02", "S", "100", "1.5", ""), [""] * 8)
@example(("Q", "AAPL", "20240305", "20:00:01", "S", "100", "1.5", ""), [""] * 8)
@example(
    ("Q", "A", "20240305", "09:30:02", "E", "999999999999999.9999999999", "9" * 15, ""), [""] * 8
)
def test_plain_values_equal_normalize_lines_bit_for_bit(fields, pads):
    line = "|".join(pad + field for pad, field in zip(pads, fields, strict=True))
    fast = assert_same_as_normalize_line(line)
    event("normalize_line" if fast is None else "fast path")


def test_every_line_of_a_generated_file_agrees_and_most_take_the_fast_path(tmp_path):
    made = generate(tmp_path / "f.psv", rows=20_000, days=3, symbols=40, seed=11, bad_rate=0.02)
    rows = list(PsvReader(made.path))
    for row in rows:
        assert_same_as_normalize_line(row.raw_line)
    plain = sum(trade_values(row.raw_line) is not None for row in rows)
    assert plain > 0.9 * len(rows)


def test_lines_the_fast_path_leaves_to_normalize_line():
    for line in [
        " Q|AAPL|20240305|09:30:02|S|100|170.12|A",  # padded: normalize_line strips it
        "Q|AAPL|20240305|09:30:02|S|0100|170.12|A",  # leading zero: str(Decimal) drops it
        "Q|AAPL|20240305|09:30:02|S|0.5|170.12|A",
        "Q|AAPL|20240230|09:30:02|S|100|170.12|A",  # not a calendar date
        "Q|AAPL|20240305|03:59:59|S|100|170.12|A",  # outside the window
        "Q|AAPL|20240305|09:30:02|S|100|170.12",
    ]:
        assert trade_values(line) is None


def test_only_normalize_line_gets_the_fast_path():
    assert plain_values_for(normalize_line) is trade_values
    assert plain_values_for(lambda line: normalize_line(line)) is None
