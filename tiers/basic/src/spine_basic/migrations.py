"""Schema migrations: an ordered list of (version, name, sql), applied once each, checksummed.

`migrate(conn)` applies whatever is pending, each migration in its own transaction, and
records it in `_migrations` (version, name, checksum = sha256 of the SQL, applied_at). Running
it again applies nothing. A migration whose SQL changed after it was applied is an error that
names it; a store refuses to open a database whose schema is behind (`check_schema`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from spine_basic._schema import (
    LEDGER_SQL,
    OTC_RAW_LINES_SQL,
    OTC_SQL,
    OTC_TRADES_BATCH_INDEX_SQL,
    OTC_TRADES_IN_METRIC_ORDER_SQL,
    OTC_TRADES_RESTATED_BY_DATE_SQL,
)
from spine_core.errors import ConfigurationError, SpineError


@dataclass(frozen=True)
class Migration:
    """One schema change; never edit one that has shipped, add the next version instead."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL, recorded when applied and compared on every open."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    """A row of `_migrations`."""

    version: int
    name: str
    checksum: str
    applied_at: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ledger", LEDGER_SQL),
    Migration(2, "otc", OTC_SQL),
    Migration(3, "otc_trades_without_batch_index", OTC_TRADES_BATCH_INDEX_SQL),
    Migration(4, "otc_trades_restated_by_date", OTC_TRADES_RESTATED_BY_DATE_SQL),
    Migration(5, "otc_trades_in_metric_order", OTC_TRADES_IN_METRIC_ORDER_SQL),
    Migration(6, "otc_raw_lines", OTC_RAW_LINES_SQL),
)
"""The basic tier's schema, oldest first."""

LATEST_VERSION = MIGRATIONS[-1].version

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS _migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


class MigrationError(SpineError):
    """The database's recorded migrations disagree with this release's."""


class ChecksumMismatch(MigrationError):
    """An applied migration's SQL has changed since it was applied."""

    def __init__(self, migration: Migration, recorded: str) -> None:
        super().__init__(
            f"migration {migration.version} ({migration.name}) was changed after it was applied: "
            f"recorded checksum {recorded[:12]}…, now {migration.checksum[:12]}…; restore it and "
            "add a new migration instead"
        )
        self.migration = migration


class SchemaBehind(ConfigurationError):
    """The database lacks migrations this release needs."""


class SchemaAhead(ConfigurationError):
    """The database was migrated by a newer release than this one."""


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip().strip(";").strip():
                statements.append(buffer.strip())
            buffer = ""
    leftover = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        statements.append(buffer.strip())
    return statements


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(_MIGRATIONS_TABLE)


def applied_migrations(conn: sqlite3.Connection) -> list[AppliedMigration]:
    """What `_migrations` records, by version; empty for a new database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not exists:
        return []
    rows = conn.execute(
        "SELECT version, name, checksum, applied_at FROM _migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*row) for row in rows]


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied version; 0 for a database never initialised."""
    applied = applied_migrations(conn)
    return applied[-1].version if applied else 0


def verify(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Migration]:
    """Check recorded checksums and return the migrations still pending.

    Raises `ChecksumMismatch` naming a changed migration and `SchemaAhead` when the database
    holds a version this release does not know.
    """
    known = {m.version: m for m in migrations}
    applied = applied_migrations(conn)
    for row in applied:
        migration = known.get(row.version)
        if migration is None:
            raise SchemaAhead(
                f"the database has schema version {row.version} ({row.name}), newer than this "
                f"release knows (latest {max(known, default=0)}); upgrade market-spine-basic"
            )
        if migration.checksum != row.checksum:
            raise ChecksumMismatch(migration, row.checksum)
    done = {row.version for row in applied}
    return [m for m in sorted(migrations, key=lambda m: m.version) if m.version not in done]


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Migration]:
    """Apply every pending migration in order, each in one transaction; return those applied.

    `conn` must be in autocommit mode (`isolation_level=None`), as `SqliteDatabase` opens it.
    """
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version number")
    _ensure_table(conn)
    applied: list[Migration] = []
    for migration in verify(conn, migrations):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            if conn.execute(
                "SELECT 1 FROM _migrations WHERE version = ?", (migration.version,)
            ).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                (
                    migration.version,
                    migration.name,
                    migration.checksum,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration)
    return applied


def check_schema(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS, *, where: str = ""
) -> int:
    """Refuse a database whose schema is behind or altered; return its version."""
    pending = verify(conn, migrations)
    current = schema_version(conn)
    if pending:
        place = f" {where}" if where else ""
        state = (
            "has no Market Spine schema yet"
            if current == 0
            else f"is at schema version {current}, this release needs {pending[-1].version}"
        )
        raise SchemaBehind(f"the database{place} {state}; run spine db init")
    return current
