from __future__ import annotations

import subprocess
from importlib.metadata import version

from spine_advanced.tier import TIER
from spine_core.capabilities import Capability
from spine_core.tier import active_tier
from spine_intermediate.testing import spine_cmd


def test_the_advanced_tier_is_the_highest_installed(monkeypatch):
    monkeypatch.delenv("SPINE_TIER", raising=False)
    assert active_tier() == TIER
    assert TIER.rank == 30


def test_capabilities_of_the_advanced_tier():
    for cap in (
        Capability.MAP_STEP,
        Capability.WAIT_STEP,
        Capability.CHECKPOINTS,
        Capability.RETRY_POLICY,
        Capability.CANCEL,
        Capability.DEAD_LETTERS,
        Capability.CONCURRENCY_KEYS,
    ):
        assert cap in TIER.capabilities
    assert Capability.SUBWORKFLOW_STEP not in TIER.capabilities


def test_spine_version_names_the_active_tier():
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        spine_cmd("--version"), capture_output=True, text=True, env=env, check=True
    ).stdout
    assert f"market-spine-advanced {version('market-spine-advanced')}" in out
    assert "active tier: advanced (market-spine-advanced)" in out
