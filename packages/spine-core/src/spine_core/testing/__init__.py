"""Conformance suites and hypothesis helpers that every tier's tests reuse.

Needs the `testing` extra (`pip install spine-core[testing]`): pytest and hypothesis.
"""

import pytest

# Installed packages are not assertion-rewritten by default; ask for it before the suites are
# imported, so a failing conformance test shows the values it compared.
pytest.register_assert_rewrite(
    "spine_core.testing.backend",
    "spine_core.testing.checkpoints",
    "spine_core.testing.dead_letters",
    "spine_core.testing.fanout",
    "spine_core.testing.ledger",
    "spine_core.testing.strategies",
)

from spine_core.testing.backend import (  # noqa: E402  (after register_assert_rewrite)
    CONFORMANCE_PIPELINES,
    BackendConformance,
    BackendFactory,
    register_conformance_pipelines,
)
from spine_core.testing.checkpoints import CheckpointStoreConformance  # noqa: E402
from spine_core.testing.dead_letters import DeadLetterStoreConformance  # noqa: E402
from spine_core.testing.fanout import FanOutStoreConformance  # noqa: E402
from spine_core.testing.ledger import LedgerStoreConformance  # noqa: E402

__all__ = [
    "CONFORMANCE_PIPELINES",
    "BackendConformance",
    "BackendFactory",
    "CheckpointStoreConformance",
    "DeadLetterStoreConformance",
    "FanOutStoreConformance",
    "LedgerStoreConformance",
    "register_conformance_pipelines",
]
