"""The portable metrics SQL, run on SQLite, against the Python reference."""

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine_otc.generator import generate
from spine_otc.metrics import METRIC_FIELDS, DailyMetrics, compute_daily_metrics, sanity_quality
from spine_otc.normalize import Trade, normalize_line
from spine_otc.parser import PsvReader
from spine_otc.sql import (
    daily_metrics_select_sql,
    date_placeholders,
    delete_daily_metrics_sql,
    insert_daily_metrics_sql,
    metrics_sanity_sql,
)
from spine_otc.testing import assert_metrics_match

NUMBER_TYPES = {"real": "REAL", "numeric": "NUMERIC"}


def open_database(number_type: str = "real") -> sqlite3.Connection:
    kind = NUMBER_TYPES[number_type]
    db = sqlite3.connect(":memory:")
    db.execute(
        f"""CREATE TABLE otc_trades (
            trade_date TEXT NOT NULL, trade_time TEXT NOT NULL, symbol TEXT NOT NULL,
            venue TEXT NOT NULL, short_type TEXT NOT NULL, size {kind} NOT NULL,
            price {kind} NOT NULL, notional {kind} NOT NULL, source_key TEXT NOT NULL,
            line_number INTEGER NOT NULL)"""
    )
    columns = ", ".join(
        f"{name} {'TEXT' if name in ('trade_date', 'symbol') else kind}" for name in METRIC_FIELDS
    )
    db.execute(f"CREATE TABLE otc_metrics_daily ({columns}, PRIMARY KEY (trade_date, symbol))")
    return db


def insert_trades(
    db: sqlite3.Connection, trades: Iterable[tuple[tuple[str, int], Trade]], exact: bool = False
) -> None:
    def number(value: Decimal) -> str | float:
        return str(value) if exact else float(value)

    db.executemany(
        "INSERT INTO otc_trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                t.trade_date.isoformat(),
                t.trade_time,
                t.symbol,
                t.venue,
                t.short_type,
                number(t.size),
                number(t.price),
                number(t.notional),
                source_key,
                line,
            )
            for (source_key, line), t in trades
        ],
    )


def recompute(db: sqlite3.Connection, dates: Sequence[date], first_last: str = "window"):
    params = [d.isoformat() for d in dates]
    with db:
        db.execute(delete_daily_metrics_sql(len(params)), params)
        db.execute(insert_daily_metrics_sql(len(params), "qmark", first_last), params)
        counts = db.execute(metrics_sanity_sql(len(params)), params).fetchone()
    return sanity_quality(*counts)


def read_metrics(db: sqlite3.Connection) -> list[DailyMetrics]:
    cursor = db.execute(
        f"SELECT {', '.join(METRIC_FIELDS)} FROM otc_metrics_daily ORDER BY trade_date, symbol"
    )
    return [DailyMetrics.from_row(row) for row in cursor]


def generated_trades(path, **kwargs):
    made = generate(path, **kwargs)
    trades = []
    for row in PsvReader(path):
        result = normalize_line(row.raw_line)
        if isinstance(result, Trade):
            trades.append(((path.name, row.line_number), result))
    return made, trades


@pytest.mark.parametrize("first_last", ["window", "seek"])
@pytest.mark.parametrize("number_type", ["real", "numeric"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_matches_the_python_reference_on_generated_files(
    tmp_path, seed, number_type, first_last
):
    made, trades = generated_trades(
        tmp_path / "gen.psv", rows=4000, days=3, symbols=7, seed=seed, bad_rate=0.02
    )
    db = open_database(number_type)
    insert_trades(db, trades)
    quality = recompute(db, made.dates, first_last)
    expected = compute_daily_metrics(trades)
    assert quality.record_count == len(expected) == 21
    assert quality.custom == {"vwap_outside_range": 0.0, "hhi_out_of_range": 0.0}
    assert_metrics_match(read_metrics(db), expected)


def test_integral_numbers_stored_as_integers_still_divide_exactly():
    line = "Q|ABC|20240305|10:00:00|S|{size}|{price}|"
    trades = [
        (("f", 2), normalize_line(line.format(size=3, price=10))),
        (("f", 3), normalize_line(line.format(size=1, price=11))),
    ]
    db = open_database("numeric")
    insert_trades(db, trades, exact=True)
    recompute(db, [date(2024, 3, 5)])
    [metrics] = read_metrics(db)
    assert metrics.vwap == pytest.approx(41 / 4)
    assert metrics.short_exempt_share == 0.0
    assert metrics.venue_hhi == pytest.approx(10_000)


def test_only_the_requested_dates_are_recomputed(tmp_path):
    made, trades = generated_trades(
        tmp_path / "gen.psv", rows=900, days=3, symbols=3, seed=4, bad_rate=0.0
    )
    db = open_database()
    insert_trades(db, trades)
    quality = recompute(db, made.dates[1:2])
    assert quality.record_count == 3
    assert {m.trade_date for m in read_metrics(db)} == {made.dates[1].isoformat()}


def test_sanity_sql_counts_insane_rows():
    db = open_database()
    insert_trades(db, [(("f", 2), normalize_line("Q|ABC|20240305|10:00:00|S|1|10|"))])
    recompute(db, [date(2024, 3, 5)])
    db.execute("UPDATE otc_metrics_daily SET vwap = 99, venue_hhi = 10001")
    db.execute(
        "INSERT INTO otc_metrics_daily "
        "SELECT '2024-03-05', 'XYZ', 1, 1, 1, 1, 1, 1, 1, 1, 1, -5, 0, 1, 0"
    )
    quality = sanity_quality(*db.execute(metrics_sanity_sql(1), ["2024-03-05"]).fetchone())
    assert quality.record_count == 2
    assert quality.invalid_count == 2
    assert quality.custom == {"vwap_outside_range": 1.0, "hhi_out_of_range": 2.0}


def test_placeholders_for_each_paramstyle():
    assert date_placeholders(3) == "?1, ?2, ?3"
    assert date_placeholders(3, "dollar") == "$1, $2, $3"
    assert "$2" in daily_metrics_select_sql(2, "dollar")
    with pytest.raises(ValueError):
        date_placeholders(0)
    with pytest.raises(ValueError):
        date_placeholders(1, "named")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first_last"):
        daily_metrics_select_sql(1, "qmark", "sorted")  # type: ignore[arg-type]


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("5000"), places=4)
sizes = st.one_of(
    st.integers(min_value=1, max_value=100_000).map(Decimal),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("999"), places=4),
)
times = ["04:00:00", "09:29:59", "09:30:00", "12:00:00", "15:59:59", "16:00:00", "20:00:00"]
random_trades = st.lists(
    st.builds(
        Trade,
        trade_date=st.sampled_from([date(2024, 3, 4), date(2024, 3, 5)]),
        trade_time=st.sampled_from(times),
        symbol=st.sampled_from(["A", "BRK.B", "Z/W"]),
        venue=st.sampled_from("QBNDO"),
        short_type=st.sampled_from("SE"),
        size=sizes,
        price=prices,
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("first_last", ["window", "seek"])
@settings(max_examples=60, deadline=None)
@given(trades=random_trades, sources=st.lists(st.sampled_from("ab"), min_size=40, max_size=40))
def test_sql_matches_the_reference_on_random_trades(trades, sources, first_last):
    keyed = [((sources[i], i + 2), t) for i, t in enumerate(trades)]
    db = open_database()
    insert_trades(db, keyed)
    quality = recompute(db, [date(2024, 3, 4), date(2024, 3, 5)], first_last)
    expected = compute_daily_metrics(keyed)
    assert quality.invalid_count == 0
    assert_metrics_match(read_metrics(db), expected)
