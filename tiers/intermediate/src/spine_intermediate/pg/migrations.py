"""Numbered schema migrations, recorded in `_migrations` with a checksum of their text.

Each tier that owns tables ships its own chain, numbered 1..N, named by its component
(`intermediate`, `advanced`); `_migrations` is keyed by (component, version) so the chains never
clash, and a chain above another is applied after it. `migrate` applies what is missing
(idempotent; serialised by an advisory lock); an applied migration whose text changed is an error.
Stores call `require_current` on open and refuse a schema that is behind the code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from spine_core.errors import ConfigurationError

_LOCK_KEY = 0x5350494E45  # "SPINE"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered migration."""

    version: int
    name: str
    sql: str
    component: str = "intermediate"

    @property
    def checksum(self) -> str:
        """sha256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_chain(package: str, component: str) -> tuple[Migration, ...]:
    """The `NNNN_name.sql` files in `package`'s `migrations` folder, as `component`'s chain."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], text, component))
    found.sort(key=lambda m: m.version)
    for index, migration in enumerate(found, start=1):
        if migration.version != index:
            raise RuntimeError(
                f"{component} migrations must be numbered 1..N without gaps; "
                f"got {migration.version}"
            )
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = load_chain("spine_intermediate.pg", "intermediate")
"""Every migration this version of the code knows, in order."""

# A database made before chains had components holds only intermediate's rows: the column's
# default files them there, and the key is widened to (component, version).
_CREATE = """
CREATE TABLE IF NOT EXISTS _migrations (
    version    integer NOT NULL,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE _migrations ADD COLUMN IF NOT EXISTS component text NOT NULL DEFAULT 'intermediate';
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint c JOIN pg_attribute a
          ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.conrelid = '_migrations'::regclass AND c.contype = 'p'
           AND a.attname = 'component'
    ) THEN
        ALTER TABLE _migrations DROP CONSTRAINT IF EXISTS _migrations_pkey;
        ALTER TABLE _migrations ADD PRIMARY KEY (component, version);
    END IF;
END $$;
"""


def _component(migrations: tuple[Migration, ...]) -> str:
    return migrations[0].component if migrations else "intermediate"


async def _applied(conn: asyncpg.Connection, component: str) -> dict[int, tuple[str, str]]:
    exists = await conn.fetchval("SELECT to_regclass('_migrations') IS NOT NULL")
    if not exists:
        return {}
    has_component = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_name = '_migrations' AND column_name = 'component')"
    )
    if not has_component:
        if component != "intermediate":
            return {}
        rows = await conn.fetch("SELECT version, name, checksum FROM _migrations")
    else:
        rows = await conn.fetch(
            "SELECT version, name, checksum FROM _migrations WHERE component = $1", component
        )
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


def _verify(applied: dict[int, tuple[str, str]], migrations: tuple[Migration, ...]) -> None:
    known = {m.version: m for m in migrations}
    component = _component(migrations)
    for version, (name, checksum) in applied.items():
        migration = known.get(version)
        if migration is None:
            raise ConfigurationError(
                f"database schema is at {component} migration {max(applied)}, newer than this "
                f"code ({len(migrations)}); upgrade market-spine-{component}"
            )
        if migration.checksum != checksum:
            raise ConfigurationError(
                f"{component} migration {version:04d}_{name} was changed after it was applied "
                "(checksum mismatch); restore it and add a new migration instead"
            )


async def migrate(
    conn: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply missing migrations, each in its own transaction; returns the versions applied."""
    done: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE)
        applied = await _applied(conn, _component(migrations))
        _verify(applied, migrations)
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO _migrations (component, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.version)
    return done


async def schema_version(conn: asyncpg.Connection, component: str = "intermediate") -> int:
    """The highest applied migration of `component`'s chain (0 for an empty database)."""
    applied = await _applied(conn, component)
    return max(applied, default=0)


async def require_current(
    conn: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> None:
    """Refuse a schema that is behind the code (or whose applied migrations were edited)."""
    component = _component(migrations)
    applied = await _applied(conn, component)
    _verify(applied, migrations)
    have, need = max(applied, default=0), len(migrations)
    if have < need:
        where = "schema" if component == "intermediate" else f"{component} schema"
        raise ConfigurationError(f"{where} is at {have}, code needs {need}: run spine db init")
