"""The basic tier: SQLite stores, the inline (synchronous) backend, core's dispatcher.

Registered under the `spine.tiers` entry-point group as `basic = spine_basic.tier:TIER`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from spine_basic.database import SqliteDatabase, database_path
from spine_basic.ledger import SqliteLedgerStore
from spine_basic.migrations import Migration, migrate, schema_version
from spine_basic.otc_store import SqliteOtcStore
from spine_core.backend import InlineBackend
from spine_core.capabilities import capabilities_up_to
from spine_core.resources import Resources
from spine_core.tier import Runtime, Settings, Tier, assemble_runtime
from spine_otc.pipelines import IngestProgress
from spine_otc.store import OtcStore

DISTRIBUTION = "market-spine-basic"
DEFAULT_DATABASE_URL = "sqlite:///spine.db"


class ProgressRelay:
    """The `IngestProgress` resource: forwards (bytes read, total) to whoever listens now.

    The CLI sets `target` while it shows a progress bar; otherwise reports go nowhere.
    """

    def __init__(self) -> None:
        self.target: Callable[[int, int], None] | None = None

    def __call__(self, bytes_read: int, total_bytes: int) -> None:
        """Forward one report."""
        if self.target is not None:
            self.target(bytes_read, total_bytes)


def open_runtime(settings: Settings) -> Runtime:
    """Open the SQLite stores named by `settings.database_url` and wire the dispatcher.

    Runs are synchronous: `Dispatcher.submit` returns once the execution has completed or
    failed (pending -> running -> completed | failed).
    """
    path = database_path(settings.database_url)
    ledger = SqliteLedgerStore(path)
    try:
        otc = SqliteOtcStore(path)
    except BaseException:
        ledger.close()
        raise
    progress = ProgressRelay()
    resources = Resources({OtcStore: otc, IngestProgress: progress})
    return assemble_runtime(
        TIER,
        settings,
        store=ledger,
        resources=resources,
        make_backend=InlineBackend,
        extras={"otc_store": otc, "database_path": path, "ingest_progress": progress},
        on_close=[ledger.close, otc.close],
    )


def init_database(settings: Settings) -> tuple[list[Migration], int]:
    """Apply pending migrations to the database in `settings`; (applied now, schema version)."""
    path: Path = database_path(settings.database_url)
    database = SqliteDatabase(path, create=True)
    try:
        applied = migrate(database.conn)
        return applied, schema_version(database.conn)
    finally:
        database.close()


TIER = Tier(
    name="basic",
    distribution=DISTRIBUTION,
    rank=10,
    capabilities=capabilities_up_to(DISTRIBUTION),
    default_database_url=DEFAULT_DATABASE_URL,
    open=open_runtime,
    extend_cli=None,
    storage_errors=lambda: (sqlite3.Error,),
)
"""The basic tier, as `spine.tiers` entry point `basic`."""
