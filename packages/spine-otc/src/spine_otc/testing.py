"""`OtcStoreConformance`: the pytest suite every `OtcStore` implementation must pass.

Subclass it in a test module and provide a `store` fixture that returns an EMPTY store for
each test::

    class TestSqliteOtcStore(OtcStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            return SqliteOtcStore(tmp_path / "spine.db")

Needs pytest and hypothesis (`pip install spine-otc[testing]`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spine_core.quality import Gate, QualityMetrics
from spine_core.registry import PipelineContext, PipelineDef
from spine_core.resources import Resources
from spine_core.results import StepResult, StepStatus
from spine_otc.errors import BatchNotFound, DuplicateBatch
from spine_otc.generator import generate
from spine_otc.layout import DELIMITER, HEADER_LINE, SHORT_TYPES, SYMBOL_PATTERN, VENUES
from spine_otc.metrics import METRIC_FIELDS, DailyMetrics, compute_daily_metrics
from spine_otc.normalize import Reject, RejectReason, Trade, normalize_line
from spine_otc.parser import PsvReader, RawRow
from spine_otc.pipelines import daily_metrics, ingest, normalize
from spine_otc.store import TABLES, Batch, BatchStatus, CaptureInfo, OtcStore, Replacement

_T0 = datetime(2024, 3, 5, 21, 0, tzinfo=UTC)
REFERENCE_TOLERANCE = 1e-9


def accept_all(quality: QualityMetrics) -> bool:
    """An accept callback that never refuses."""
    return True


def refuse_all(quality: QualityMetrics) -> bool:
    """An accept callback that always refuses."""
    return False


def psv(lines: Sequence[str], *, trailer: int | None = None) -> str:
    """A complete file: header, the lines, and a trailer counting them."""
    count = len(lines) if trailer is None else trailer
    return "\n".join([HEADER_LINE, *lines, str(count)]) + "\n"


def capture_lines(
    store: OtcStore,
    lines: Sequence[str],
    *,
    source_key: str = "otc.psv",
    minute: int = 0,
) -> Batch:
    """Capture `lines` as the data rows (lines 2..) of a file named `source_key`."""
    content = psv(lines)
    info = CaptureInfo(
        batch_id=f"b{minute:04d}-{hashlib.sha256(content.encode()).hexdigest()[:8]}",
        source_key=source_key,
        file_name=f"/data/{source_key}",
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        captured_at=_T0 + timedelta(minutes=minute),
    )
    rows = [RawRow(number, line) for number, line in enumerate(lines, start=2)]
    return store.capture_batch(info, rows)


def run_pipeline(
    defn: PipelineDef,
    params: Mapping[str, Any],
    store: OtcStore,
    *,
    gates: Sequence[Gate] = (),
    run_params: Mapping[str, Any] | None = None,
) -> StepResult:
    """Run one pipeline function directly against `store`, as a tier's engine would."""
    ctx = PipelineContext(
        execution_id="conformance",
        pipeline=defn.name,
        resources=Resources({OtcStore: store}),
        gates=tuple(gates),
        run_params=dict(run_params or params),
    )
    return defn.fn(defn.validate(params), ctx)


def run_daily(store: OtcStore, path: Path) -> StepResult:
    """`otc.daily` on one file against `store`: ingest, normalize, metrics; the first failure."""
    captured = run_pipeline(ingest, {"file": str(path)}, store)
    if captured.status is not StepStatus.OK:
        return captured
    batch_id = captured.output["batch_id"]
    normalized = run_pipeline(normalize, {"batch_id": batch_id}, store)
    if normalized.status is not StepStatus.OK:
        return normalized
    return run_pipeline(daily_metrics, {"batch_id": batch_id}, store)


def assert_metrics_match(actual: Sequence[DailyMetrics], expected: Sequence[DailyMetrics]) -> None:
    """Same rows, text and counts equal, numbers within a relative 1e-9."""
    assert [(m.trade_date, m.symbol) for m in actual] == [
        (m.trade_date, m.symbol) for m in expected
    ]
    for got, want in zip(actual, expected, strict=True):
        for name in METRIC_FIELDS:
            a, b = getattr(got, name), getattr(want, name)
            if isinstance(b, float):
                assert math.isclose(a, b, rel_tol=REFERENCE_TOLERANCE, abs_tol=1e-9), (
                    f"{want.trade_date} {want.symbol} {name}: {a} != {b}"
                )
            else:
                assert a == b, f"{want.trade_date} {want.symbol} {name}: {a!r} != {b!r}"


GOOD = (
    "Q|AAPL|20240305|09:30:02|S|100|170.1200|A",
    "B|AAPL|20240305|11:14:55|E|250|169.8450|A",
    "N|AAPL|20240305|16:45:10|S|40.5|169.9000|A",
    "Q|MSFT|20240305|10:00:00|S|300|410.0000|A",
)
BAD = "X|AAPL|20240305|10:00:00|S|100|170.0000|A"

_BLANKS = st.sampled_from(["", " ", "\t", "\u00a0", "\u2003", "\r"])
_DIGITS = "0123456789"
_ARABIC_INDIC = str.maketrans(_DIGITS, "".join(chr(0x660 + d) for d in range(10)))
"""Unicode digits: `int()` reads them, the layout's `[0-9]` does not."""
_NEAR_MISSES = {
    "venue": ("X", "q", "QQ", ""),
    "symbol": (
        "aapl",
        "A" * 15,
        "A" * 14 + ".",
        "AA PL",
        "ÄPPL",
        "A-B",
        "1".translate(_ARABIC_INDIC),
    ),
    "date": (
        *("20240230", "20230229", "19000229", "21000229", "00000101", "00000229", "20240431"),
        *("20241301", "20240001", "20240100", "2024035", "2024-03-05", "+2024035"),
        "20240305".translate(_ARABIC_INDIC),
    ),
    "time": (
        *("24:00:00", "03:59:59", "20:00:01", "20:00:59", "23:59:59", "12:60:00", "12:00:60"),
        *("9:30:00", "09:30", "09-30-00", "1::00:00", "10:0::00", "10:00:0:"),
        "10:00:00".translate(_ARABIC_INDIC),
    ),
    "short_type": ("s", "X", "SE", ""),
    "number": ("0", "0.0", "00", "-1", "+1", "1e3", ".5", "5.", "1,000", "NaN", "Infinity", ""),
}


def _valid(pattern: str, *edges: str) -> st.SearchStrategy[str]:
    """Values matching `pattern`, with the edge cases drawn as often as the rest."""
    return st.one_of(st.from_regex(pattern, fullmatch=True), st.sampled_from(edges))


_NUMBER = st.one_of(
    _valid(r"[0-9]{1,4}(\.[0-9]{1,4})?", "1", "0.0001", "0100", "1.50"),
    _valid(r"[0-9]{1,17}(\.[0-9]{1,12})?", "9" * 15 + "." + "9" * 10, "1" * 16, "1." + "1" * 11),
)
_DATE = st.one_of(
    st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"),
    st.sampled_from(["20240229", "20000229", "00010101", "99991231", "20240305"]),
)
_TIME = st.one_of(
    st.times().map(lambda t: t.strftime("%H:%M:%S")),
    st.sampled_from(["04:00:00", "20:00:00", "09:30:00", "16:00:00", "10:00:00"]),
)


_KINDS = ("venue", "symbol", "date", "time", "short_type", "number", "number")


@st.composite
def near_valid_lines(draw: st.DrawFn) -> str:
    """A valid data line, or one with exactly one defect of the kinds files have.

    One defect at a time, so each rule is what decides the line: the borders of every check.
    """
    fields = [
        draw(st.sampled_from(sorted(VENUES))),
        draw(st.from_regex(SYMBOL_PATTERN, fullmatch=True)),
        draw(_DATE),
        draw(_TIME),
        draw(st.sampled_from(sorted(SHORT_TYPES))),
        draw(_NUMBER),
        draw(_NUMBER),
        draw(st.sampled_from(["A", "", " ", "anything"])),
    ]
    defect = draw(st.sampled_from(["none", "value", "value", "value", "blanks", "field count"]))
    where = draw(st.integers(0, len(_KINDS) - 1))
    if defect == "value":
        fields[where] = draw(st.sampled_from(_NEAR_MISSES[_KINDS[where]]))
    elif defect == "blanks":
        fields[where] = draw(_BLANKS) + fields[where] + draw(_BLANKS)
    elif defect == "field count":
        fields = draw(st.sampled_from([fields[:-1], [*fields, "extra"]]))
    return DELIMITER.join(fields)


def border_lines() -> list[str]:
    """A clean line, then that line with each near miss, blanks and edge value in turn."""
    clean = ["Q", "AAPL", "20240305", "10:00:00", "S", "100", "170.12", "A"]
    edges = {
        "date": ("20240229", "20000229", "00010101", "99991231"),
        "time": ("04:00:00", "20:00:00"),
        "number": ("0.0001", "0100", "1.50", "9" * 15 + "." + "9" * 10, "1" * 16, "1." + "1" * 11),
    }
    lines = [DELIMITER.join(clean)]
    for where, kind in enumerate(_KINDS):
        for value in (*_NEAR_MISSES[kind], *edges.get(kind, ()), f" {clean[where]}\u00a0"):
            fields = [*clean]
            fields[where] = value
            lines.append(DELIMITER.join(fields))
    return lines


def data_lines() -> st.SearchStrategy[str]:
    """Lines as `PsvReader` yields them: near-valid ones, and any text without NUL or newline."""
    anything = st.text(st.characters(exclude_characters="\x00\n", exclude_categories=["Cs"]))
    return st.one_of(near_valid_lines(), near_valid_lines(), near_valid_lines(), anything)


class OtcStoreConformance:
    """The `OtcStore` contract. Subclasses provide `store`: an empty store per test."""

    @pytest.fixture
    def store(self) -> OtcStore:
        """Override: return an empty store of the implementation under test."""
        raise NotImplementedError("subclass OtcStoreConformance and provide a `store` fixture")

    # capture

    def test_capture_records_batch_and_raw_rows(self, store: OtcStore) -> None:
        """A capture writes one batch, status captured, and every raw row."""
        batch = capture_lines(store, [*GOOD, BAD])
        assert batch.status is BatchStatus.CAPTURED
        assert batch.row_count == 5
        assert batch.source_key == "otc.psv"
        assert store.get_batch(batch.batch_id) == batch
        assert store.find_batch(batch.content_hash) == batch
        assert store.find_batch("0" * 64) is None
        assert store.get_batch("no-such-batch") is None
        counts = store.table_counts()
        assert set(counts) == set(TABLES)
        assert counts["otc_batches"] == 1
        assert counts["otc_trades_raw"] == 5
        assert counts["otc_trades"] == 0

    def test_capture_is_all_or_nothing_when_rows_raise(self, store: OtcStore) -> None:
        """If the row iterator raises, neither the batch nor any row is kept."""

        def failing_rows() -> Iterator[RawRow]:
            yield RawRow(2, GOOD[0])
            yield RawRow(3, GOOD[1])
            raise ValueError("trailer missing")

        info = CaptureInfo("b-fail", "otc.psv", "/data/otc.psv", "f" * 64, _T0)
        with pytest.raises(ValueError, match="trailer missing"):
            store.capture_batch(info, failing_rows())
        assert store.get_batch("b-fail") is None
        assert store.find_batch("f" * 64) is None
        assert store.table_counts()["otc_batches"] == 0
        assert store.table_counts()["otc_trades_raw"] == 0

    def test_capturing_known_content_raises_and_adds_nothing(self, store: OtcStore) -> None:
        """Capturing an already-captured content hash raises DuplicateBatch, writing nothing."""
        first = capture_lines(store, GOOD)
        before = store.table_counts()
        again = CaptureInfo("b-again", "copy.psv", "/data/copy.psv", first.content_hash, _T0)
        with pytest.raises(DuplicateBatch) as raised:
            store.capture_batch(again, [RawRow(2, GOOD[0])])
        assert raised.value.batch_id == first.batch_id
        assert store.table_counts() == before
        assert store.get_batch("b-again") is None

    def test_list_batches_newest_first_and_by_source(self, store: OtcStore) -> None:
        """Batches list newest capture first, filtered by source key and limited."""
        a1 = capture_lines(store, GOOD[:1], source_key="a.psv", minute=1)
        b1 = capture_lines(store, GOOD[:2], source_key="b.psv", minute=2)
        a2 = capture_lines(store, GOOD[:3], source_key="a.psv", minute=3)
        assert [b.batch_id for b in store.list_batches()] == [a2.batch_id, b1.batch_id, a1.batch_id]
        assert [b.batch_id for b in store.list_batches("a.psv")] == [a2.batch_id, a1.batch_id]
        assert [b.batch_id for b in store.list_batches(limit=1)] == [a2.batch_id]
        assert store.list_batches("none.psv") == []

    # normalize

    def test_normalize_writes_trades_and_rejects(self, store: OtcStore) -> None:
        """Valid rows become trades, invalid rows rejects with reason, message and raw line."""
        batch = capture_lines(store, [*GOOD, BAD, "garbage"])
        outcome = store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        assert outcome.accepted
        assert outcome.quality.record_count == 6
        assert outcome.quality.valid_count == 4
        assert outcome.quality.invalid_count == 2
        assert outcome.quality.failure_reasons == {"BAD_VENUE": 1, "FIELD_COUNT": 1}
        saved = outcome.batch
        assert saved.status is BatchStatus.NORMALIZED
        assert (saved.trade_count, saved.reject_count) == (4, 2)
        assert saved.affected_dates == (date(2024, 3, 5),)
        assert store.get_batch(batch.batch_id) == saved
        assert store.table_counts()["otc_trades"] == 4
        assert store.table_counts()["otc_rejects"] == 2
        assert store.reject_counts(batch.batch_id) == {"BAD_VENUE": 1, "FIELD_COUNT": 1}
        rejects = store.query_rejects(batch.batch_id)
        assert [(r.line_number, r.reason, r.raw_line) for r in rejects] == [
            (6, RejectReason.BAD_VENUE, BAD),
            (7, RejectReason.FIELD_COUNT, "garbage"),
        ]
        assert rejects[0].message
        only = store.query_rejects(batch.batch_id, reason=RejectReason.FIELD_COUNT)
        assert [r.line_number for r in only] == [7]

    @settings(
        max_examples=60,
        deadline=None,
        # One store serves every example (each captures its own source), and several
        # subclasses in one session share this method: both are intended.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
            HealthCheck.too_slow,
        ],
    )
    @given(lines=st.lists(data_lines(), min_size=1, max_size=60))
    @example(lines=border_lines())
    def test_normalize_agrees_with_normalize_line(self, store: OtcStore, lines: list[str]) -> None:
        """Random lines through the store: exactly the trades and rejects `normalize_line` gives.

        The oracle for stores that normalize some lines their own way (set-based in SQL):
        values, decimal scales, reason codes and messages must all be normalize_line's.
        """
        example = next(self._examples)
        source_key = f"property-{example}.psv"
        info = CaptureInfo(
            f"bprop{example:05d}", source_key, f"/data/{source_key}", f"{example:064x}", _T0
        )
        batch = store.capture_batch(info, [RawRow(n, line) for n, line in enumerate(lines, 2)])
        outcome = store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        expected = {n: normalize_line(line) for n, line in enumerate(lines, 2)}
        trades = {t.line_number: t.trade for t in store.query_trades(batch_id=batch.batch_id)}
        want_trades = {n: r for n, r in expected.items() if isinstance(r, Trade)}
        assert trades == want_trades
        assert {n: (str(t.size), str(t.price)) for n, t in trades.items()} == {
            n: (str(t.size), str(t.price)) for n, t in want_trades.items()
        }
        rejects = store.query_rejects(batch.batch_id, limit=len(lines))
        assert [(r.line_number, r.reason, r.message, r.raw_line) for r in rejects] == [
            (n, r.reason, r.message, lines[n - 2])
            for n, r in expected.items()
            if isinstance(r, Reject)
        ]
        reasons = Counter(r.reason.value for r in expected.values() if isinstance(r, Reject))
        assert outcome.quality.record_count == len(lines)
        assert outcome.quality.failure_reasons == dict(sorted(reasons.items()))
        assert outcome.batch.trade_count == len(want_trades)
        assert outcome.batch.affected_dates == tuple(
            sorted({t.trade_date for t in want_trades.values()})
        )

    _examples = itertools.count()

    def test_normalized_trades_round_trip_exactly(self, store: OtcStore) -> None:
        """Stored trades read back equal to what the normalizer produced, decimals exact."""
        batch = capture_lines(store, GOOD)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        stored = store.query_trades(symbol="AAPL")
        assert [(t.batch_id, t.source_key, t.line_number) for t in stored] == [
            (batch.batch_id, "otc.psv", 2),
            (batch.batch_id, "otc.psv", 3),
            (batch.batch_id, "otc.psv", 4),
        ]
        expected = [normalize_line(line) for line in GOOD[:3]]
        assert [t.trade for t in stored] == expected
        third = stored[2].trade
        assert third.size == Decimal("40.5")
        assert third.notional == Decimal("40.5") * Decimal("169.9")
        assert not third.is_regular_hours
        assert third.timestamp == "2024-03-05T16:45:10"

    def test_identical_rows_are_distinct_trades(self, store: OtcStore) -> None:
        """Identical lines are separate trades: nothing deduplicates."""
        batch = capture_lines(store, [GOOD[0], GOOD[0], GOOD[0]])
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        assert store.table_counts()["otc_trades"] == 3
        assert store.table_counts()["otc_trades_raw"] == 3
        store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        [metrics] = store.query_metrics()
        assert metrics.trade_count == 3
        assert metrics.volume == 300

    def test_refused_normalize_changes_nothing_and_marks_gate_failed(self, store: OtcStore) -> None:
        """A refused normalize changes no trades or rejects; a looser accept then succeeds."""
        first = capture_lines(store, GOOD, minute=1)
        store.normalize_batch(first.batch_id, normalize_line, accept_all)
        trades_before = store.query_trades(limit=1000)
        counts_before = store.table_counts()
        restated = capture_lines(store, [GOOD[0], BAD], minute=2)
        seen: list[QualityMetrics] = []

        def strict(quality: QualityMetrics) -> bool:
            seen.append(quality)
            return quality.invalid_rate <= 0.01

        outcome = store.normalize_batch(restated.batch_id, normalize_line, strict)
        assert not outcome.accepted
        assert seen == [outcome.quality]
        assert outcome.quality.invalid_rate == 0.5
        assert store.query_trades(limit=1000) == trades_before
        assert store.table_counts()["otc_trades"] == counts_before["otc_trades"]
        assert store.table_counts()["otc_rejects"] == counts_before["otc_rejects"]
        assert store.query_rejects(restated.batch_id) == []
        failed = store.get_batch(restated.batch_id)
        assert failed is not None
        assert failed.status is BatchStatus.GATE_FAILED
        assert (failed.trade_count, failed.reject_count) == (1, 1)
        assert failed.detail is not None and "50.00%" in failed.detail
        assert failed.affected_dates == ()

        looser = store.normalize_batch(
            restated.batch_id, normalize_line, lambda q: q.invalid_rate <= 0.6
        )
        assert looser.accepted
        assert looser.batch.status is BatchStatus.NORMALIZED
        assert looser.batch.detail is None
        assert store.table_counts()["otc_trades"] == 1
        assert store.table_counts()["otc_trades_raw"] == counts_before["otc_trades_raw"] + 2

    def test_restatement_replaces_the_source_trades_of_its_dates_only(
        self, store: OtcStore
    ) -> None:
        """New content for a source replaces its trades of the dates it covers, says whose.

        The source's other dates, other sources and the replaced batch's raw rows stay.
        """
        march_4 = GOOD[0].replace("20240305", "20240304")
        old = capture_lines(store, [*GOOD, march_4], minute=1)
        other = capture_lines(store, [GOOD[3]], source_key="other.psv", minute=2)
        store.normalize_batch(old.batch_id, normalize_line, accept_all)
        store.normalize_batch(other.batch_id, normalize_line, accept_all)
        new_lines = [GOOD[0].replace("20240305", "20240306"), GOOD[1]]
        new = capture_lines(store, new_lines, minute=3)
        raw_before = store.table_counts()["otc_trades_raw"]
        outcome = store.normalize_batch(new.batch_id, normalize_line, accept_all)
        assert outcome.batch.affected_dates == (date(2024, 3, 5), date(2024, 3, 6))
        assert outcome.replaced == (Replacement(old.batch_id, (date(2024, 3, 5),), 4, 1),)
        mine = store.query_trades(batch_id=new.batch_id)
        assert [t.trade for t in mine] == [normalize_line(line) for line in new_lines][::-1]
        kept = store.query_trades(batch_id=old.batch_id)
        assert [t.trade for t in kept] == [normalize_line(march_4)]
        assert len(store.query_trades(batch_id=other.batch_id)) == 1
        assert store.table_counts()["otc_trades"] == 4
        assert store.table_counts()["otc_trades_raw"] == raw_before

    def test_normalize_unknown_batch_raises(self, store: OtcStore) -> None:
        """Normalizing an unknown batch raises BatchNotFound."""
        with pytest.raises(BatchNotFound):
            store.normalize_batch("no-such-batch", normalize_line, accept_all)

    def test_renormalizing_a_batch_does_not_duplicate(self, store: OtcStore) -> None:
        """Normalizing the same batch twice leaves one copy of its trades and rejects."""
        batch = capture_lines(store, [*GOOD, BAD])
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        assert store.table_counts()["otc_trades"] == 4
        assert store.table_counts()["otc_rejects"] == 1

    # metrics

    def test_metrics_equal_the_python_reference(self, store: OtcStore, tmp_path: Path) -> None:
        """Metrics of a generated file equal the Python reference within 1e-9 relative."""
        path = tmp_path / "generated.psv"
        made = generate(path, rows=3000, days=3, symbols=6, seed=11, bad_rate=0.01)
        rows = list(PsvReader(path))
        info = CaptureInfo("b-gen", path.name, str(path), "a" * 64, _T0)
        batch = store.capture_batch(info, rows)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        outcome = store.recompute_daily_metrics(made.dates, accept_all)
        results = [(row.line_number, normalize_line(row.raw_line)) for row in rows]
        expected = compute_daily_metrics(
            ((path.name, line), r) for line, r in results if isinstance(r, Trade)
        )
        assert outcome.accepted
        assert outcome.rows == len(expected) == 18
        assert outcome.quality.custom == {"vwap_outside_range": 0.0, "hhi_out_of_range": 0.0}
        assert sum(isinstance(r, Reject) for _, r in results) == made.bad_rows
        assert_metrics_match(store.query_metrics(), expected)

    def test_first_and_last_price_break_time_ties_by_source_then_line(
        self, store: OtcStore
    ) -> None:
        """First/last price order by time, then source key, then line number."""
        a = capture_lines(
            store,
            ["Q|T|20240305|10:00:00|S|1|11|", "Q|T|20240305|10:00:00|S|1|12|"],
            source_key="a.psv",
            minute=1,
        )
        b = capture_lines(
            store,
            ["Q|T|20240305|10:00:00|S|1|13|", "Q|T|20240305|10:00:00|S|1|14|"],
            source_key="b.psv",
            minute=2,
        )
        for batch in (a, b):
            store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        [metrics] = store.query_metrics(symbol="T")
        assert (metrics.first_price, metrics.last_price) == (11.0, 14.0)

    def test_refused_metrics_keep_the_previous_rows(self, store: OtcStore) -> None:
        """A refused metrics recompute leaves the previous metric rows in place."""
        batch = capture_lines(store, GOOD)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        before = store.query_metrics()
        restated = capture_lines(store, [GOOD[0]], minute=5)
        store.normalize_batch(restated.batch_id, normalize_line, accept_all)
        outcome = store.recompute_daily_metrics([date(2024, 3, 5)], refuse_all)
        assert not outcome.accepted
        assert outcome.rows == 1
        assert store.query_metrics() == before

    def test_recompute_drops_symbols_no_longer_traded(self, store: OtcStore) -> None:
        """Recomputing a date removes rows of symbols with no trades left on it."""
        batch = capture_lines(store, GOOD, minute=1)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        assert [m.symbol for m in store.query_metrics()] == ["AAPL", "MSFT"]
        restated = capture_lines(store, GOOD[:1], minute=2)
        outcome = store.normalize_batch(restated.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics(outcome.batch.affected_dates, accept_all)
        assert [m.symbol for m in store.query_metrics()] == ["AAPL"]

    def test_recompute_leaves_other_dates_alone(self, store: OtcStore) -> None:
        """Only the requested dates are recomputed."""
        lines = [*GOOD, GOOD[0].replace("20240305", "20240306")]
        batch = capture_lines(store, lines)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics([date(2024, 3, 5), date(2024, 3, 6)], accept_all)
        before = store.query_metrics(date_from=date(2024, 3, 6))
        outcome = store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        assert outcome.dates == (date(2024, 3, 5),)
        assert store.query_metrics(date_from=date(2024, 3, 6)) == before
        assert store.table_counts()["otc_metrics_daily"] == 3

    def test_recompute_with_no_dates_writes_nothing(self, store: OtcStore) -> None:
        """An empty date set is an accepted no-op."""
        outcome = store.recompute_daily_metrics([], accept_all)
        assert outcome.accepted
        assert outcome.rows == 0
        assert store.table_counts()["otc_metrics_daily"] == 0

    def test_metrics_values_for_a_known_day(self, store: OtcStore) -> None:
        """Every metric of a small hand-checked day."""
        batch = capture_lines(store, GOOD)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        store.recompute_daily_metrics([date(2024, 3, 5)], accept_all)
        [aapl] = store.query_metrics(symbol="AAPL")
        notional = 100 * 170.12 + 250 * 169.845 + 40.5 * 169.9
        assert aapl.trade_count == 3
        assert aapl.volume == pytest.approx(390.5)
        assert aapl.notional == pytest.approx(notional)
        assert aapl.vwap == pytest.approx(notional / 390.5)
        assert (aapl.high, aapl.low) == (170.12, 169.845)
        assert (aapl.first_price, aapl.last_price) == (170.12, 169.9)
        assert aapl.venue_count == 3
        shares = [100 / 390.5, 250 / 390.5, 40.5 / 390.5]
        assert aapl.venue_hhi == pytest.approx(sum((100 * s) ** 2 for s in shares))
        assert aapl.short_exempt_share == pytest.approx(250 / 390.5)
        assert aapl.regular_hours_volume == pytest.approx(350)
        assert aapl.extended_hours_volume == pytest.approx(40.5)

    # queries

    def test_query_trades_filters_and_paginates(self, store: OtcStore) -> None:
        """Trades filter by symbol, date and venue, ordered, with limit and offset."""
        lines = [*GOOD, GOOD[0].replace("20240305", "20240306")]
        batch = capture_lines(store, lines)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        everything = store.query_trades()
        assert [t.line_number for t in everything] == [2, 5, 3, 4, 6]
        assert [t.line_number for t in store.query_trades(limit=2, offset=1)] == [5, 3]
        assert [t.line_number for t in store.query_trades(symbol="MSFT")] == [5]
        assert [t.line_number for t in store.query_trades(venue="Q")] == [2, 5, 6]
        on_day = store.query_trades(trade_date=date(2024, 3, 6))
        assert [t.line_number for t in on_day] == [6]
        both = store.query_trades(symbol="AAPL", venue="Q", trade_date=date(2024, 3, 5))
        assert [t.line_number for t in both] == [2]
        assert store.query_trades(symbol="NONE") == []

    def test_query_metrics_filters_by_symbol_and_dates(self, store: OtcStore) -> None:
        """Metrics filter by symbol and inclusive date bounds, with limit and offset."""
        lines = [
            *GOOD,
            GOOD[0].replace("20240305", "20240306"),
            GOOD[3].replace("20240305", "20240307"),
        ]
        batch = capture_lines(store, lines)
        store.normalize_batch(batch.batch_id, normalize_line, accept_all)
        days = [date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)]
        store.recompute_daily_metrics(days, accept_all)

        def keys(found: list[DailyMetrics]) -> list[tuple[str, str]]:
            return [(m.trade_date, m.symbol) for m in found]

        assert keys(store.query_metrics()) == [
            ("2024-03-05", "AAPL"),
            ("2024-03-05", "MSFT"),
            ("2024-03-06", "AAPL"),
            ("2024-03-07", "MSFT"),
        ]
        assert keys(store.query_metrics(symbol="MSFT")) == [
            ("2024-03-05", "MSFT"),
            ("2024-03-07", "MSFT"),
        ]
        assert keys(store.query_metrics(date_from=days[1], date_to=days[1])) == [
            ("2024-03-06", "AAPL")
        ]
        assert keys(store.query_metrics(date_from=days[1])) == [
            ("2024-03-06", "AAPL"),
            ("2024-03-07", "MSFT"),
        ]
        assert keys(store.query_metrics(date_to=days[0], symbol="AAPL")) == [("2024-03-05", "AAPL")]
        assert keys(store.query_metrics(limit=2, offset=1)) == [
            ("2024-03-05", "MSFT"),
            ("2024-03-06", "AAPL"),
        ]

    # the pipelines, on this store

    def test_concurrent_daily_runs_end_as_a_sequential_run(
        self, store: OtcStore, tmp_path: Path
    ) -> None:
        """8 files for the same dates (4, each twice) on 4 threads end as a sequential run.

        Three rounds, each in its own folder with the same file names: every run completes,
        no round removes an earlier one's trades, and the metrics equal the reference.
        """
        for round_number in range(3):
            folder = tmp_path / f"round{round_number}"
            folder.mkdir()
            paths = []
            for n in range(4):
                path = folder / f"otc_{n}.psv"
                generate(path, rows=300, days=2, symbols=3, seed=10 * round_number + n)
                copy = folder / f"copy_{n}.psv"
                copy.write_bytes(path.read_bytes())
                paths += [path, copy]
            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda p: run_daily(store, p), paths))
            assert all(r.status is StepStatus.OK for r in results), [r.error for r in results]
            assert sum(not r.output.get("dates") for r in results) == 0
            stored = store.query_trades(limit=10**6)
            assert len(stored) == 4 * 300 * (round_number + 1)
            expected = compute_daily_metrics(
                ((t.source_key, t.line_number), t.trade) for t in stored
            )
            assert_metrics_match(store.query_metrics(), expected)

    def test_pipelines_run_end_to_end(self, store: OtcStore, tmp_path: Path) -> None:
        """The OTC pipelines run on this store; ingesting the same file again adds nothing."""
        path = tmp_path / "otc_20240304.psv"
        made = generate(path, rows=600, days=2, symbols=3, seed=5, bad_rate=0.005)
        captured = run_pipeline(ingest, {"file": str(path)}, store)
        assert captured.status is StepStatus.OK
        assert captured.output["rows"] == 600
        assert not captured.output["duplicate"]
        batch_id = captured.output["batch_id"]
        normalized = run_pipeline(normalize, {"batch_id": batch_id}, store)
        assert normalized.status is StepStatus.OK, normalized.error
        assert normalized.quality is not None
        assert normalized.quality.invalid_count == made.bad_rows == 3
        computed = run_pipeline(daily_metrics, {"batch_id": batch_id}, store)
        assert computed.status is StepStatus.OK, computed.error
        assert computed.output["rows"] == 6
        counts = store.table_counts()
        again = run_pipeline(ingest, {"file": str(path)}, store)
        assert again.output["duplicate"] and again.output["batch_id"] == batch_id
        assert store.table_counts() == counts
