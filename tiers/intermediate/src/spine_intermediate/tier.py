"""The intermediate tier: PostgreSQL stores, the LocalBackend, run history, choice steps."""

from __future__ import annotations

from spine_core.capabilities import capabilities_up_to
from spine_core.tier import Runtime, Settings, Tier

DISTRIBUTION = "market-spine-intermediate"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/spine"


def open_runtime(settings: Settings) -> Runtime:
    """Open the PostgreSQL stores and wire a LocalBackend (not started) and the dispatcher."""
    from spine_intermediate.runtime import build_runtime

    return build_runtime(TIER, settings)


def storage_errors() -> tuple[type[BaseException], ...]:
    """The asyncpg exceptions, imported only when a runtime or an error needs them."""
    from spine_intermediate.pg.connect import STORAGE_ERRORS

    return STORAGE_ERRORS


def _extend_cli(group: object) -> None:
    from spine_intermediate.cli import extend_cli

    extend_cli(group)


TIER = Tier(
    name="intermediate",
    distribution=DISTRIBUTION,
    rank=20,
    capabilities=capabilities_up_to(DISTRIBUTION),
    default_database_url=DEFAULT_DATABASE_URL,
    open=open_runtime,
    extend_cli=_extend_cli,
    storage_errors=storage_errors,
)
"""The intermediate tier, as `spine.tiers` entry point `intermediate`."""
