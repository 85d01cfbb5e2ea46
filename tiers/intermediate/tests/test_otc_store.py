from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spine_core import Dispatcher, ExecutionRunner, InlineBackend, Registry, Resources
from spine_core.memory import InMemoryLedgerStore
from spine_intermediate.pg import PostgresLedgerStore
from spine_intermediate.pg import otc as otc_module
from spine_intermediate.pg.otc import PostgresOtcStore
from spine_intermediate.tier import TIER
from spine_otc import InMemoryOtcStore, OtcStore, PsvReader, RawRow, sample_path
from spine_otc.generator import generate
from spine_otc.normalize import Reject, RejectReason, Trade, normalize_line
from spine_otc.store import CaptureInfo
from spine_otc.testing import GOOD, accept_all, border_lines, capture_lines

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_otc(pg_url):
    ledger = PostgresLedgerStore.open(pg_url)
    yield PostgresOtcStore(ledger.db)
    ledger.close()


def _run_daily(otc) -> dict:
    registry = Registry()
    resources = Resources({OtcStore: otc})
    ledger = InMemoryLedgerStore()
    runner = ExecutionRunner(ledger, registry, TIER.capabilities, "intermediate", resources)
    dispatcher = Dispatcher(
        ledger, InlineBackend(runner), registry, TIER.capabilities, "intermediate"
    )
    execution = dispatcher.submit("otc.daily", {"file": str(sample_path())})
    assert execution.status.value == "completed", execution.error
    return execution.result


def test_sample_matches_in_memory_oracle(pg_otc):
    mem = InMemoryOtcStore()
    _run_daily(mem)
    _run_daily(pg_otc)
    want, got = mem.query_metrics(), pg_otc.query_metrics()
    assert len(got) == len(want) > 0
    for a, b in zip(want, got, strict=True):
        for field, va in vars(a).items():
            vb = getattr(b, field)
            if isinstance(va, float):
                assert vb == pytest.approx(va, rel=1e-9), field
            else:
                assert vb == va, field
    assert pg_otc.table_counts() == mem.table_counts()
    batch = pg_otc.list_batches()[0]
    assert pg_otc.reject_counts(batch.batch_id) == mem.reject_counts(mem.list_batches()[0].batch_id)
    trades = pg_otc.query_trades(limit=5)
    assert [t.to_json_dict() for t in trades] == [
        {**t.to_json_dict(), "batch_id": batch.batch_id} for t in mem.query_trades(limit=5)
    ]
    # Same file twice adds nothing.
    _run_daily(pg_otc)
    assert pg_otc.table_counts() == mem.table_counts()


def _exact(trade: Trade) -> tuple[str, str, str]:
    return tuple(format(v, "f") for v in (trade.size, trade.price, trade.notional))


@pytest.mark.parametrize("lines_per_statement", [otc_module.NORMALIZE_LINES, 7])
def test_stored_numbers_are_normalize_lines_exactly(
    pg_otc, tmp_path, monkeypatch, lines_per_statement
):
    """Size, price and notional as stored (scale included) are normalize_line's, SQL path or not,
    in one statement or many line ranges."""
    monkeypatch.setattr(otc_module, "NORMALIZE_LINES", lines_per_statement)
    path = tmp_path / "generated.psv"
    generate(path, rows=2000, days=2, symbols=5, seed=3, bad_rate=0.01)
    lines = [row.raw_line for row in PsvReader(path)] + border_lines()
    batch = capture_lines(pg_otc, lines)
    pg_otc.normalize_batch(batch.batch_id, normalize_line, accept_all)
    stored = pg_otc.db.call(
        pg_otc.db.pool.fetch(
            "SELECT line_number, trade_date, trade_time, symbol, venue, short_type, "
            "size::text, price::text, notional::text FROM otc_trades ORDER BY line_number"
        )
    )
    results = [(n, normalize_line(line)) for n, line in enumerate(lines, 2)]
    expected = [
        (n, t.trade_date, t.trade_time, t.symbol, t.venue, t.short_type, *_exact(t))
        for n, t in results
        if isinstance(t, Trade)
    ]
    assert [tuple(r) for r in stored] == expected


def test_capture_rolls_back_when_rows_raise_while_a_copy_runs(pg_otc, monkeypatch):
    """The reader failing while the previous chunk's COPY is in flight still keeps nothing."""
    monkeypatch.setattr(otc_module, "COPY_ROWS", 5_000)

    def rows():
        yield from (RawRow(n, GOOD[0]) for n in range(2, 10_003))
        raise ValueError("trailer missing")

    info = CaptureInfo("b-mid-copy", "otc.psv", "/data/otc.psv", "e" * 64, datetime.now(UTC))
    with pytest.raises(ValueError, match="trailer missing"):
        pg_otc.capture_batch(info, rows())
    assert pg_otc.table_counts()["otc_trades_raw"] == 0
    assert pg_otc.get_batch("b-mid-copy") is None


def test_another_normalizer_decides_every_line(pg_otc):
    """The SQL fast path is normalize_line's: any other normalizer sees every line."""
    batch = capture_lines(pg_otc, GOOD)
    seen = []

    def refuse(line: str) -> Reject:
        seen.append(line)
        return Reject(RejectReason.BAD_VENUE, "not today")

    outcome = pg_otc.normalize_batch(batch.batch_id, refuse, accept_all)
    assert seen == list(GOOD)
    assert outcome.quality.failure_reasons == {"BAD_VENUE": len(GOOD)}
    assert pg_otc.table_counts()["otc_trades"] == 0
