"""Builds the advanced tier's `Runtime`: intermediate's builder, for this tier, on its schema."""

from __future__ import annotations

from spine_advanced.pg.migrations import require_all_current
from spine_core.tier import Runtime, Settings, Tier
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.runtime import build_runtime as build_intermediate_runtime


def build_runtime(tier: Tier, settings: Settings) -> Runtime:
    """Intermediate's stores and LocalBackend, refusing a database without the advanced chain."""
    runtime = build_intermediate_runtime(tier, settings)
    try:
        db: PgDatabase = runtime.extras["database"]
        db.call(_require_all_current(db))
    except BaseException:
        runtime.close()
        raise
    return runtime


async def _require_all_current(db: PgDatabase) -> None:
    async with db.pool.acquire() as conn:
        await require_all_current(conn)
