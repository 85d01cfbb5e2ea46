"""Administrative operations: create the database, apply migrations (`spine db init`)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from spine_intermediate.pg.connect import (
    CONNECT_TIMEOUT,
    check_url,
    ensure_database,
    unreachable,
)
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.pg.migrations import MIGRATIONS, Migration, migrate, schema_version


def init_database(
    url: str, chains: Sequence[tuple[Migration, ...]] = (MIGRATIONS,)
) -> tuple[bool, list[Migration], dict[str, int]]:
    """(database created, migrations applied now, schema version per chain) at `url`.

    `chains` are applied in order, lowest tier first: a higher tier's tables build on lower ones.
    """
    check_url(url)
    bridge = AsyncBridge("spine-pg-admin")

    async def go() -> tuple[bool, list[Migration], dict[str, int]]:
        created = await ensure_database(url)
        conn = await asyncpg.connect(dsn=url, timeout=CONNECT_TIMEOUT)
        applied: list[Migration] = []
        versions: dict[str, int] = {}
        try:
            for chain in chains:
                by_version = {m.version: m for m in chain}
                applied.extend(by_version[v] for v in await migrate(conn, chain))
                component = chain[0].component
                versions[component] = await schema_version(conn, component)
        finally:
            await conn.close()
        return created, applied, versions

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
