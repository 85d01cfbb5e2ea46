from collections import Counter
from datetime import date

from spine_otc.generator import generate, symbol_names, trading_days
from spine_otc.normalize import Reject, Trade, normalize_line
from spine_otc.parser import PsvReader, file_sha256
from spine_otc.sample import SAMPLE_ARGS, sample_path


def results(path):
    return [(row.line_number, normalize_line(row.raw_line)) for row in PsvReader(path)]


def test_same_seed_gives_byte_identical_files(tmp_path):
    args = {"rows": 2000, "days": 2, "symbols": 4, "seed": 9, "bad_rate": 0.01}
    generate(tmp_path / "a.psv", **args)
    generate(tmp_path / "b.psv", **args)
    generate(tmp_path / "c.psv", **{**args, "seed": 10})
    assert (tmp_path / "a.psv").read_bytes() == (tmp_path / "b.psv").read_bytes()
    assert (tmp_path / "a.psv").read_bytes() != (tmp_path / "c.psv").read_bytes()


def test_the_shipped_sample_is_reproducible(tmp_path):
    made = generate(tmp_path / "sample.psv", **SAMPLE_ARGS)
    assert file_sha256(made.path) == file_sha256(sample_path())


def test_sample_has_a_few_bad_rows_under_the_default_gate():
    found = results(sample_path())
    assert len(found) == 3000
    bad = sum(isinstance(r, Reject) for _, r in found)
    assert 0 < bad / len(found) < 0.01
    trades = [r for _, r in found if isinstance(r, Trade)]
    assert {t.symbol for t in trades} == {"AAPL", "MSFT", "NVDA", "AMZN", "TSLA"}
    assert len({t.trade_date for t in trades}) == 3


def test_a_file_is_valid_with_the_requested_shape(tmp_path):
    made = generate(tmp_path / "f.psv", rows=5000, days=4, symbols=25, seed=3, bad_rate=0.0)
    found = results(made.path)
    assert len(found) == 5000 and made.bad_rows == 0
    trades = [r for _, r in found]
    assert all(isinstance(t, Trade) for t in trades)
    assert {t.trade_date for t in trades} == set(made.dates)
    assert made.dates == (date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7))
    assert {t.symbol for t in trades} <= set(made.symbols)
    assert len(made.symbols) == 25 and made.symbols[-1] == "SYM0025"
    assert {t.venue for t in trades} == set("QBNDO")
    assert {t.short_type for t in trades} == {"S", "E"}
    regular = sum(t.is_regular_hours for t in trades)
    assert 0.8 < regular / len(trades) < 0.95
    sizes = [t.size for t in trades]
    assert sum(s % 100 == 0 for s in sizes) / len(sizes) > 0.5
    assert any(s != s.to_integral_value() for s in sizes)
    assert any(s % 100 != 0 and s == s.to_integral_value() for s in sizes)
    keys = [(t.trade_date, t.trade_time) for t in trades]
    assert keys == sorted(keys)


def test_bad_rate_is_exact_and_mixes_every_reason(tmp_path):
    made = generate(tmp_path / "f.psv", rows=4000, days=2, symbols=3, seed=8, bad_rate=0.05)
    assert made.bad_rows == 200
    reasons = Counter(r.reason for _, r in results(made.path) if isinstance(r, Reject))
    assert sum(reasons.values()) == 200
    assert len(reasons) == 10


def test_trailer_may_count_the_header(tmp_path):
    made = generate(tmp_path / "f.psv", rows=10, days=1, symbols=1, seed=1,
                    trailer_counts_header=True)  # fmt: skip
    assert made.path.read_text().splitlines()[-1] == "11"
    assert len(list(PsvReader(made.path))) == 10


def test_named_symbols_and_calendar_helpers(tmp_path):
    made = generate(tmp_path / "f.psv", rows=50, days=1, symbols=["ZZ", "YY"], seed=1)
    assert {r.symbol for _, r in results(made.path)} == {"ZZ", "YY"}
    assert trading_days(date(2024, 3, 8), 2) == (date(2024, 3, 8), date(2024, 3, 11))
    assert symbol_names(2) == ("AAPL", "MSFT")
