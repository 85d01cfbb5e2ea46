"""The advanced tier's migration chain, recorded in `_migrations` under component `advanced`.

It is applied after intermediate's chain (its tables and indexes build on `executions`), by
the same `migrate`, so both chains share one advisory lock and one bookkeeping table.
"""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from spine_core.status import ACTIVE_STATUSES, TERMINAL_STATUSES
from spine_intermediate.pg.migrations import (
    MIGRATIONS as INTERMEDIATE_MIGRATIONS,
)
from spine_intermediate.pg.migrations import (
    Migration,
    load_chain,
    migrate,
    require_current,
)

ACTIVE_STATUS_LIST = ", ".join(f"'{status.value}'" for status in sorted(ACTIVE_STATUSES))
"""`ACTIVE_STATUSES` as an SQL list: the one definition of which statuses hold a key."""

TERMINAL_STATUS_LIST = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL_STATUSES))
"""`TERMINAL_STATUSES` as an SQL list: the statuses announced as finished."""


def _render(migration: Migration) -> Migration:
    # The checksum covers the rendered text: if a status set changes, an applied migration
    # no longer matches and `spine db init` asks for a new migration instead of drifting.
    sql = migration.sql.replace("{active_statuses}", ACTIVE_STATUS_LIST)
    return replace(migration, sql=sql.replace("{terminal_statuses}", TERMINAL_STATUS_LIST))


MIGRATIONS: tuple[Migration, ...] = tuple(
    _render(m) for m in load_chain("spine_advanced.pg", "advanced")
)
"""The advanced chain this version of the code knows, in order."""

CHAINS: tuple[tuple[Migration, ...], ...] = (INTERMEDIATE_MIGRATIONS, MIGRATIONS)
"""Every chain the advanced tier needs, lowest first."""


async def migrate_all(conn: asyncpg.Connection) -> list[Migration]:
    """Apply what is missing of every chain, lowest first; returns the migrations applied."""
    done: list[Migration] = []
    for chain in CHAINS:
        by_version = {m.version: m for m in chain}
        done.extend(by_version[v] for v in await migrate(conn, chain))
    return done


async def require_all_current(conn: asyncpg.Connection) -> None:
    """Refuse a database where any chain is behind the code."""
    for chain in CHAINS:
        await require_current(conn, chain)
