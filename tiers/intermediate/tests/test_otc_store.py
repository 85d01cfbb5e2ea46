from __future__ import annotations

import pytest

from spine_core import Dispatcher, ExecutionRunner, InlineBackend, Registry, Resources
from spine_core.memory import InMemoryLedgerStore
from spine_intermediate.pg import PostgresLedgerStore
from spine_intermediate.pg.otc import PostgresOtcStore
from spine_intermediate.tier import TIER
from spine_otc import InMemoryOtcStore, OtcStore, sample_path

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
