"""The stores' fast paths against `normalize_line` (the rules).

`trade_values` (one line) and `decide_chunk` (a chunk, what the SQLite store runs): same
trades with bit-for-bit the same values (so the same decimals: the exact text of size and
price), same rejects with the same reasons, messages and line numbers, same tally.
"""

import struct
from datetime import date

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from spine_otc.bulk import decide_chunk
from spine_otc.generator import generate
from spine_otc.layout import SHORT_TYPES, SYMBOL_PATTERN, VENUES
from spine_otc.normalize import (
    NormalizeTally,
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


BORDER_LINES = [
    "Q|AAPL|20240305|09:30:02|S|100|170.1200|A",
    "Q|AAPL|20240305|04:00:00|S|100|1.5|",  # the window's first second
    "Q|AAPL|20240305|20:00:00|S|100|1.5|",  # and its last
    "Q|AAPL|20240305|20:00:01|S|100|1.5|",
    "Q|AAPL|20240305|03:59:59|S|100|1.5|",
    "Q|AAPL|20240229|09:30:02|S|100|1.5|",  # a leap day
    "Q|AAPL|20230229|09:30:02|S|100|1.5|",
    "Q|AAPL|20240230|09:30:02|S|100|1.5|",
    "Q|AAPL|20240305|24:00:00|S|100|1.5|",
    " Q|AAPL |20240305| 09:30:02|S |100| 1.5|",  # padded: still a trade
    "Q|AAPL|20240305|09:30:02|S|0100|170.12|A",  # leading zero
    "Q|AAPL|20240305|09:30:02|S|0.5|0.0001|A",
    "Q|AAPL|20240305|09:30:02|S|0|1.5|A",
    "Q|AAPL|20240305|09:30:02|S|100|0.0|A",
    "Q|AAPL|20240305|09:30:02|S|1e3|1.5|A",
    "Q|AAPL|20240305|09:30:02|S|-1|1.5|A",
    "Q|A|20240305|09:30:02|E|999999999999999.9999999999|999999999999999|",
    "Q|A|20240305|09:30:02|E|9999999999999999|1|",  # 16 digits
    "Q|A|20240305|09:30:02|E|1.00000000001|1|",  # 11 decimals
    "Q|ABCDEFGHIJKLMN|20240305|09:30:02|S|1|1|",  # 14 characters
    "Q|ABCDEFGHIJKLMNO|20240305|09:30:02|S|1|1|",  # 15
    "Q|BRK.B|20240305|09:30:02|S|1|1|",
    "Q|brk|20240305|09:30:02|S|1|1|",
    "X|AAPL|20240305|09:30:02|S|1|1|",
    "Q|AAPL|20240305|09:30:02|X|1|1|",
    "Q||20240305|09:30:02|S|1|1|",
    "Q|AAPL|20240305|09:30:02|S|100|170.12",  # seven fields
    "Q|AAPL|20240305|09:30:02|S|100|170.12|A|",  # nine
    "",
    "   ",
]


def assert_same_as_each_line(lines, first=2):
    numbers = list(range(first, first + len(lines)))
    tally = NormalizeTally()
    chunk = decide_chunk(numbers, lines, normalize_line, tally)
    expected_trades, expected_rejects, reference = [], [], NormalizeTally()
    for number, line in zip(numbers, lines, strict=True):
        result = normalize_line(line)
        reference.add(result)
        if isinstance(result, Reject):
            expected_rejects.append((number, result, line))
        else:
            expected_trades.append((number, exact(trade_values_of(result))))
    got = list(zip(chunk.trade_lines, map(exact, chunk.trade_values), strict=True))
    assert got == expected_trades
    assert chunk.rejects == expected_rejects
    assert tally.quality() == reference.quality()


lines_of_fields = st.tuples(codes, symbols, day_texts, times, codes, decimals, decimals, links)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(BORDER_LINES),
            lines_of_fields.map("|".join),
            st.text(max_size=50),
        ),
        max_size=60,
    ),
    st.integers(2, 10**6),
)
def test_a_chunk_decides_every_line_as_normalize_line(lines, first):
    assert_same_as_each_line(lines, first)


def test_every_border_case_in_one_chunk():
    assert_same_as_each_line(BORDER_LINES)


def test_a_generated_file_in_chunks(tmp_path):
    made = generate(tmp_path / "f.psv", rows=20_000, days=3, symbols=40, seed=3, bad_rate=0.02)
    for block in PsvReader(made.path).blocks():
        assert_same_as_each_line(block.lines, block.first_line)


def test_another_normalizer_decides_every_line_itself():
    calls = []

    def normalizer(line):
        calls.append(line)
        return normalize_line(line)

    chunk = decide_chunk([2, 3], BORDER_LINES[:2], normalizer, NormalizeTally())
    assert calls == BORDER_LINES[:2]
    assert chunk.trade_lines == [2, 3]
