"""Core runs its own conformance suites against the reference implementations."""

from __future__ import annotations

import pytest

from spine_core.backend import InlineBackend
from spine_core.durable.local import LocalCheckpointStore
from spine_core.memory import InMemoryLedgerStore
from spine_core.testing import (
    BackendConformance,
    CheckpointStoreConformance,
    DeadLetterStoreConformance,
    FanOutStoreConformance,
    LedgerStoreConformance,
)


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


class TestInMemoryCheckpoints(CheckpointStoreConformance):
    @pytest.fixture
    def ledger(self):
        return InMemoryLedgerStore()

    @pytest.fixture
    def checkpoints(self, ledger):
        return ledger


class TestProcessLocalCheckpoints(CheckpointStoreConformance):
    """What the basic tier uses: run state in the process, events and moves in the ledger."""

    @pytest.fixture
    def ledger(self):
        return InMemoryLedgerStore()

    @pytest.fixture
    def checkpoints(self, ledger):
        return LocalCheckpointStore(ledger)


class TestInMemoryFanOut(FanOutStoreConformance):
    @pytest.fixture
    def ledger(self):
        return InMemoryLedgerStore()


class TestInMemoryDeadLetters(DeadLetterStoreConformance):
    @pytest.fixture
    def ledger(self):
        return InMemoryLedgerStore()

    @pytest.fixture
    def letters(self, ledger):
        return ledger
