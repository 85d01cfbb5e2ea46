"""Numbered schema migrations, recorded in `_migrations` with a checksum of their text.

`migrate` applies what is missing (idempotent; serialised by an advisory lock); an applied
migration whose text changed is an error. Stores call `require_current` on open and refuse a
schema that is behind the code.
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

    @property
    def checksum(self) -> str:
        """sha256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _load() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("spine_intermediate.pg").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for index, migration in enumerate(found, start=1):
        if migration.version != index:
            raise RuntimeError(
                f"migrations must be numbered 1..N without gaps; got {migration.version}"
            )
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()
"""Every migration this version of the code knows, in order."""

_CREATE = """
CREATE TABLE IF NOT EXISTS _migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _applied(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    exists = await conn.fetchval("SELECT to_regclass('_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM _migrations ORDER BY version")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


def _verify(applied: dict[int, tuple[str, str]], migrations: tuple[Migration, ...]) -> None:
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in applied.items():
        migration = known.get(version)
        if migration is None:
            raise ConfigurationError(
                f"database schema is at migration {max(applied)}, newer than this code "
                f"({len(migrations)}); upgrade market-spine-intermediate"
            )
        if migration.checksum != checksum:
            raise ConfigurationError(
                f"migration {version:04d}_{name} was changed after it was applied "
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
        applied = await _applied(conn)
        _verify(applied, migrations)
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO _migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.version)
    return done


async def schema_version(conn: asyncpg.Connection) -> int:
    """The highest applied migration (0 for an empty database)."""
    applied = await _applied(conn)
    return max(applied, default=0)


async def require_current(
    conn: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> None:
    """Refuse a schema that is behind the code (or whose applied migrations were edited)."""
    applied = await _applied(conn)
    _verify(applied, migrations)
    have, need = max(applied, default=0), len(migrations)
    if have < need:
        raise ConfigurationError(f"schema is at {have}, code needs {need}: run spine db init")
