from __future__ import annotations

from collections.abc import Callable

import pytest

from spine_core.capabilities import Capability, capabilities_up_to
from spine_core.engine import WorkflowEngine
from spine_core.memory import InMemoryLedgerStore
from spine_core.registry import Registry

FULL = capabilities_up_to("market-spine-full")


@pytest.fixture
def registry() -> Registry:
    return Registry(load_entry_points=False)


@pytest.fixture
def store() -> InMemoryLedgerStore:
    return InMemoryLedgerStore()


@pytest.fixture
def make_engine(registry: Registry) -> Callable[..., WorkflowEngine]:
    def make(
        capabilities: frozenset[Capability] = FULL, tier: str = "test-tier", **kwargs
    ) -> WorkflowEngine:
        return WorkflowEngine(registry=registry, capabilities=capabilities, tier=tier, **kwargs)

    return make
