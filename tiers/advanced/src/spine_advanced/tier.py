"""The advanced tier: intermediate's runtime and commands, its own schema, more capabilities."""

from __future__ import annotations

from spine_core.capabilities import capabilities_up_to
from spine_core.tier import Runtime, Settings, Tier
from spine_intermediate.tier import DEFAULT_DATABASE_URL, storage_errors

DISTRIBUTION = "market-spine-advanced"


def open_runtime(settings: Settings) -> Runtime:
    """Intermediate's runtime, built for this tier, on a database whose chains are all current."""
    from spine_advanced.runtime import build_runtime

    return build_runtime(TIER, settings)


def _extend_api(app: object) -> None:
    from spine_advanced.api import extend_api

    extend_api(app)


def _extend_cli(group: object) -> None:
    from spine_advanced.cli import extend_cli

    extend_cli(group)


TIER = Tier(
    name="advanced",
    distribution=DISTRIBUTION,
    rank=30,
    capabilities=capabilities_up_to(DISTRIBUTION),
    default_database_url=DEFAULT_DATABASE_URL,
    open=open_runtime,
    extend_cli=_extend_cli,
    extend_api=_extend_api,
    storage_errors=storage_errors,
)
"""The advanced tier, as `spine.tiers` entry point `advanced`."""
