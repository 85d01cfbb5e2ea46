"""Core runs its own conformance suites against the reference implementations."""

from __future__ import annotations

import pytest

from spine_core.backend import InlineBackend
from spine_core.memory import InMemoryLedgerStore
from spine_core.testing import BackendConformance, LedgerStoreConformance


class TestInMemoryLedger(LedgerStoreConformance):
    @pytest.fixture
    def store(self):
        store = InMemoryLedgerStore()
        yield store
        store.close()


class TestInlineBackend(BackendConformance):
    @pytest.fixture
    def store(self):
        return InMemoryLedgerStore()

    @pytest.fixture
    def make_backend(self):
        return InlineBackend
