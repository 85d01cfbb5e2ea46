from __future__ import annotations

import asyncpg
import pytest
from click.testing import CliRunner

from spine_advanced.pg.migrations import ACTIVE_STATUS_LIST
from spine_advanced.pg.migrations import MIGRATIONS as ADVANCED
from spine_basic.cli import main
from spine_core.execution import NewExecution
from spine_core.status import ACTIVE_STATUSES
from spine_intermediate.pg.ledger import PostgresLedgerStore
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.pg.migrations import MIGRATIONS as INTERMEDIATE

pytestmark = pytest.mark.postgres


def spine(*args, db, ok=True):
    result = CliRunner().invoke(main, ["--tier", "advanced", "--db", db, *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def sql(url, query, *args):
    bridge = AsyncBridge("test-sql")

    async def go():
        conn = await asyncpg.connect(dsn=url, timeout=5)
        try:
            if not args and ";" in query:
                return await conn.execute(query)
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    try:
        return bridge.call(go())
    finally:
        bridge.close()


def recorded(url):
    rows = sql(url, "SELECT component, version FROM _migrations ORDER BY component, version")
    return [(r["component"], r["version"]) for r in rows]


def expected_rows():
    return sorted(
        [("intermediate", m.version) for m in INTERMEDIATE]
        + [("advanced", m.version) for m in ADVANCED]
    )


def test_db_init_applies_both_chains_once(empty_pg_url):
    first = spine("db", "init", db=empty_pg_url).output
    assert f"applied {len(INTERMEDIATE) + len(ADVANCED)} migration(s)" in first
    assert "advanced 1 logical_key_guard" in first
    assert f"schema version intermediate {len(INTERMEDIATE)}, advanced {len(ADVANCED)}" in first
    assert recorded(empty_pg_url) == expected_rows()
    again = spine("db", "init", db=empty_pg_url).output
    assert "is up to date" in again


def _one_execution(url):
    store = PostgresLedgerStore.open(url)
    try:
        return store.create_execution(NewExecution("otc.daily", {"n": 1})).id
    finally:
        store.close()


def test_upgrade_of_an_intermediate_database_keeps_its_data(intermediate_pg_url):
    kept = _one_execution(intermediate_pg_url)
    refused = spine("runs", "list", db=intermediate_pg_url, ok=False)
    assert refused.exit_code == 1
    assert f"advanced schema is at 0, code needs {len(ADVANCED)}: run spine db init" in (
        refused.output
    )
    out = spine("db", "init", db=intermediate_pg_url).output
    assert f"applied {len(ADVANCED)} migration(s)" in out
    assert recorded(intermediate_pg_url) == expected_rows()
    assert [r["id"] for r in sql(intermediate_pg_url, "SELECT id FROM executions")] == [kept]


def test_upgrade_of_a_database_made_before_chains_had_components(intermediate_pg_url):
    """Intermediate 0.1.2 keyed `_migrations` by version alone, with no component column."""
    sql(
        intermediate_pg_url,
        "ALTER TABLE _migrations DROP CONSTRAINT _migrations_pkey;"
        "ALTER TABLE _migrations DROP COLUMN component;"
        "ALTER TABLE _migrations ADD PRIMARY KEY (version)",
    )
    kept = _one_execution(intermediate_pg_url)
    spine("db", "init", db=intermediate_pg_url)
    assert recorded(intermediate_pg_url) == expected_rows()
    assert [r["id"] for r in sql(intermediate_pg_url, "SELECT id FROM executions")] == [kept]
    assert "is up to date" in spine("db", "init", db=intermediate_pg_url).output


def test_an_edited_advanced_migration_is_refused(empty_pg_url):
    spine("db", "init", db=empty_pg_url)
    sql(empty_pg_url, "UPDATE _migrations SET checksum = 'x' WHERE component = 'advanced'")
    out = spine("db", "init", db=empty_pg_url, ok=False)
    assert out.exit_code == 1
    assert "advanced migration 0001_logical_key_guard was changed after it was applied" in (
        out.output
    )


def test_the_logical_key_guard_covers_exactly_the_active_statuses():
    assert ACTIVE_STATUS_LIST.count("'") == 2 * len(ACTIVE_STATUSES)
    for status in ACTIVE_STATUSES:
        assert f"'{status.value}'" in ADVANCED[0].sql
    assert "{active_statuses}" not in ADVANCED[0].sql
