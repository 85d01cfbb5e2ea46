"""Administrative operations: create the database, apply migrations (`spine db init`)."""

from __future__ import annotations

import asyncpg

from spine_intermediate.pg.connect import (
    CONNECT_TIMEOUT,
    check_url,
    ensure_database,
    unreachable,
)
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.pg.migrations import MIGRATIONS, Migration, migrate, schema_version


def init_database(url: str) -> tuple[bool, list[Migration], int]:
    """(database created, migrations applied now, schema version) for the database at `url`."""
    check_url(url)
    bridge = AsyncBridge("spine-pg-admin")

    async def go() -> tuple[bool, list[Migration], int]:
        created = await ensure_database(url)
        conn = await asyncpg.connect(dsn=url, timeout=CONNECT_TIMEOUT)
        try:
            versions = await migrate(conn)
            version = await schema_version(conn)
        finally:
            await conn.close()
        by_version = {m.version: m for m in MIGRATIONS}
        return created, [by_version[v] for v in versions], version

    try:
        return bridge.call(go())
    except (
        OSError,
        asyncpg.InterfaceError,
        TimeoutError,
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
    ) as exc:
        raise unreachable(url, exc) from None
    finally:
        bridge.close()
