"""Which tier is active, and the settings a tier reads."""

from __future__ import annotations

import pytest

from spine_core import tier as tier_module
from spine_core.capabilities import capabilities_up_to
from spine_core.errors import ConfigurationError
from spine_core.tier import Settings, Tier, active_tier, installed_tiers


def make_tier(name: str, rank: int) -> Tier:
    distribution = f"market-spine-{name}"
    return Tier(
        name=name,
        distribution=distribution,
        rank=rank,
        capabilities=capabilities_up_to(distribution),
        default_database_url=f"{name}://default",
        open=lambda settings: settings,  # type: ignore[arg-type,return-value]
    )


class EP:
    def __init__(self, value):
        self.value = value

    def load(self):
        return self.value


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.delenv("SPINE_TIER", raising=False)

    def install(*tiers: Tier) -> None:
        def fake(*, group):
            assert group == "spine.tiers"
            return [EP(t) for t in tiers]

        monkeypatch.setattr(tier_module, "entry_points", fake)

    return install


def test_highest_rank_wins(installed):
    installed(make_tier("intermediate", 20), make_tier("basic", 10), make_tier("advanced", 30))
    assert [t.name for t in installed_tiers()] == ["basic", "intermediate", "advanced"]
    assert active_tier().name == "advanced"


def test_spine_tier_env_selects_by_name_or_distribution(installed, monkeypatch):
    installed(make_tier("basic", 10), make_tier("intermediate", 20))
    monkeypatch.setenv("SPINE_TIER", "basic")
    assert active_tier().name == "basic"
    monkeypatch.setenv("SPINE_TIER", "market-spine-basic")
    assert active_tier().name == "basic"


def test_explicit_name_beats_the_environment(installed, monkeypatch):
    installed(make_tier("basic", 10), make_tier("intermediate", 20))
    monkeypatch.setenv("SPINE_TIER", "basic")
    assert active_tier("intermediate").name == "intermediate"


def test_no_tier_installed(installed):
    installed()
    with pytest.raises(
        ConfigurationError, match="pip install --find-links dist market-spine-basic"
    ):
        active_tier()


def test_unknown_tier_lists_the_installed_ones(installed, monkeypatch):
    installed(make_tier("basic", 10), make_tier("intermediate", 20))
    with pytest.raises(
        ConfigurationError, match="'full' is not installed; installed: basic, intermediate"
    ):
        active_tier("full")
    monkeypatch.setenv("SPINE_TIER", "advanced")
    with pytest.raises(ConfigurationError, match="'advanced' is not installed"):
        active_tier()


def test_settings_from_env():
    settings = Settings.from_env(
        "sqlite:///default.db",
        {"SPINE_DATABASE_URL": "sqlite:///x.db", "SPINE_WORKERS": "4", "HOME": "/root"},
    )
    assert settings.database_url == "sqlite:///x.db"
    assert settings.options == {"database_url": "sqlite:///x.db", "workers": "4"}
    assert Settings.from_env("sqlite:///default.db", {}).database_url == "sqlite:///default.db"


def test_open_runtime_uses_settings_or_environment(monkeypatch):
    tier = make_tier("basic", 10)
    given = Settings("sqlite:///given.db")
    assert tier.open_runtime(given) is given
    monkeypatch.delenv("SPINE_DATABASE_URL", raising=False)
    assert tier.open_runtime().database_url == "basic://default"
