from __future__ import annotations

import pytest

from spine_basic.ledger import SqliteLedgerStore
from spine_core.testing import LedgerStoreConformance


class TestSqliteLedgerStore(LedgerStoreConformance):
    @pytest.fixture
    def store(self, tmp_path, make_db):
        store = SqliteLedgerStore(make_db(tmp_path / "ledger.db"))
        yield store
        store.close()
