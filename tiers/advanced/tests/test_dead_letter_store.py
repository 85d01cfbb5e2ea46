"""PostgreSQL's dead letters pass core's conformance suite."""

from __future__ import annotations

import pytest

from spine_advanced.pg.dead_letters import PostgresDeadLetterStore
from spine_core.testing import DeadLetterStoreConformance
from spine_intermediate.pg.ledger import PostgresLedgerStore

pytestmark = pytest.mark.postgres


class TestPostgresDeadLetters(DeadLetterStoreConformance):
    @pytest.fixture
    def ledger(self, advanced_pg_url):
        store = PostgresLedgerStore.open(advanced_pg_url, max_size=2)
        yield store
        store.close()

    @pytest.fixture
    def letters(self, ledger):
        return PostgresDeadLetterStore(ledger.db)
