from __future__ import annotations

import asyncpg
import pytest

from spine_advanced.pg.migrations import migrate_all
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.testing import require_postgres as _require_postgres
from spine_intermediate.testing import temporary_database


@pytest.fixture
def empty_pg_url():
    """A fresh database with no schema."""
    _require_postgres()
    with temporary_database(migrated=False) as url:
        yield url


@pytest.fixture
def intermediate_pg_url():
    """A fresh database migrated by the intermediate chain only (as intermediate leaves it)."""
    _require_postgres()
    with temporary_database() as url:
        yield url


@pytest.fixture
def advanced_pg_url():
    """A fresh database with both chains applied."""
    _require_postgres()
    with temporary_database(migrated=False) as url:
        bridge = AsyncBridge("test-migrate")

        async def go():
            conn = await asyncpg.connect(dsn=url, timeout=5)
            try:
                await migrate_all(conn)
            finally:
                await conn.close()

        try:
            bridge.call(go())
        finally:
            bridge.close()
        yield url
