"""Core's fan-out conformance suite on PostgreSQL."""

from __future__ import annotations

import pytest

from spine_advanced.pg.fanout import PostgresFanOut
from spine_core.testing import FanOutStoreConformance
from spine_intermediate.pg.ledger import PostgresLedgerStore

pytestmark = pytest.mark.postgres


class LedgerWithFanOut:
    """The ledger and the fan-out store over one database, as the advanced runtime pairs them."""

    def __init__(self, url: str) -> None:
        self.ledger = PostgresLedgerStore.open(url, max_size=16)
        self.fanout = PostgresFanOut(self.ledger.db)

    def __getattr__(self, name: str):
        owner = self.fanout if hasattr(self.fanout, name) else self.ledger
        return getattr(owner, name)


class TestPostgresFanOut(FanOutStoreConformance):
    @pytest.fixture
    def ledger(self, advanced_pg_url):
        store = LedgerWithFanOut(advanced_pg_url)
        yield store
        store.ledger.close()
