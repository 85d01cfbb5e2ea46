"""PostgreSQL storage for the intermediate tier (asyncpg behind synchronous interfaces)."""

from spine_intermediate.pg.connect import PgDatabase, redact_url
from spine_intermediate.pg.ledger import PostgresLedgerStore
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.pg.migrations import MIGRATIONS, Migration, migrate, schema_version

__all__ = [
    "MIGRATIONS",
    "AsyncBridge",
    "Migration",
    "PgDatabase",
    "PostgresLedgerStore",
    "migrate",
    "redact_url",
    "schema_version",
]
