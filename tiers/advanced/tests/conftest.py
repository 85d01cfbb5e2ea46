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


@pytest.fixture(scope="session")
def redis_broker():
    """The shared Redis, database 5 (the Celery tests' own), or a skip with the reason."""
    from spine_advanced.celery.testing import REDIS_URL, broker_unavailable_reason, require

    require(broker_unavailable_reason(REDIS_URL))
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_broker():
    """The shared RabbitMQ (default vhost; each test declares its own queue), or a skip."""
    from spine_advanced.celery.testing import AMQP_URL, broker_unavailable_reason, require

    require(broker_unavailable_reason(AMQP_URL))
    return AMQP_URL


@pytest.fixture
def own_redis():
    """A private redis-server on a spare port, for tests that restart or stop the broker."""
    from spine_advanced.celery.testing import OwnRedis, require

    require(OwnRedis.unavailable_reason())
    with OwnRedis() as server:
        yield server
