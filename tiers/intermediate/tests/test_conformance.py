"""spine-core's and spine-otc's conformance suites, run against PostgreSQL."""

from __future__ import annotations

import pytest

from spine_core.capabilities import capabilities_up_to
from spine_core.memory import InMemoryLedgerStore
from spine_core.testing import (
    BackendConformance,
    CheckpointStoreConformance,
    LedgerStoreConformance,
)
from spine_intermediate.backend import LocalBackend
from spine_intermediate.pg import PostgresLedgerStore

pytestmark = pytest.mark.postgres

_TRUNCATE = (
    "TRUNCATE executions, execution_events, workflow_runs, workers, otc_batches, otc_raw_lines, "
    "otc_trades, otc_rejects, otc_metrics_daily"
)


@pytest.fixture(scope="module")
def shared_store(module_pg_url):
    store = PostgresLedgerStore.open(module_pg_url, min_size=1, max_size=12)
    yield store
    store.close()


@pytest.fixture
def clean_store(shared_store):
    shared_store.db.call(shared_store.db.pool.execute(_TRUNCATE))
    return shared_store


class TestPostgresLedgerStore(LedgerStoreConformance):
    @pytest.fixture
    def store(self, clean_store):
        return clean_store


class TestPostgresCheckpoints(CheckpointStoreConformance):
    @pytest.fixture
    def ledger(self, clean_store):
        return clean_store

    @pytest.fixture
    def checkpoints(self, ledger):
        return ledger


class TestLocalBackendOnPostgres(BackendConformance):
    capabilities = capabilities_up_to("market-spine-intermediate")

    @pytest.fixture
    def store(self, clean_store):
        return clean_store

    @pytest.fixture
    def make_backend(self):
        return lambda runner: LocalBackend(runner.store, runner, concurrency=4, grace=5)


class TestLocalBackendInMemory(BackendConformance):
    capabilities = capabilities_up_to("market-spine-intermediate")

    @pytest.fixture
    def store(self):
        return InMemoryLedgerStore()

    @pytest.fixture
    def make_backend(self):
        return lambda runner: LocalBackend(runner.store, runner, concurrency=4, grace=5)


try:
    from spine_otc.testing import OtcStoreConformance
except ImportError:  # spine-otc without its conformance kit yet
    OtcStoreConformance = None

if OtcStoreConformance is not None:
    from spine_intermediate.pg.otc import PostgresOtcStore

    class TestPostgresOtcStore(OtcStoreConformance):
        @pytest.fixture
        def store(self, clean_store):
            return PostgresOtcStore(clean_store.db)
