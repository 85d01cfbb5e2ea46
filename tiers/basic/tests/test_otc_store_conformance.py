from __future__ import annotations

import pytest

from spine_basic.otc_store import SqliteOtcStore
from spine_otc.testing import OtcStoreConformance


class TestSqliteOtcStore(OtcStoreConformance):
    @pytest.fixture
    def store(self, tmp_path, make_db):
        store = SqliteOtcStore(make_db(tmp_path / "otc.db"))
        yield store
        store.close()
