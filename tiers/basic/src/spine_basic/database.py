"""One SQLite database file: URL parsing, the connection, its lock and explicit transactions.

Every store in this tier opens its own `SqliteDatabase` over the same file. The connection is
in autocommit mode (`isolation_level=None`) and every write runs inside an explicit
`BEGIN IMMEDIATE ... COMMIT` taken with `SqliteDatabase.transaction()`, so the stores decide
exactly what is atomic. WAL journal mode lets readers work while one writer commits.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from spine_core.errors import ConfigurationError

SQLITE_SCHEME = "sqlite:///"
BUSY_TIMEOUT_MS = 30_000


def database_path(url: str) -> Path:
    """The file a `sqlite:///relative.db` or `sqlite:////abs/path.db` URL names.

    Any other scheme is a `ConfigurationError` that says which tier handles it.
    """
    if not url.startswith(SQLITE_SCHEME):
        scheme = url.split(":", 1)[0].lower()
        if scheme.startswith("postgres"):
            raise ConfigurationError(
                "market-spine-basic stores data in SQLite; for postgresql:// install "
                "market-spine-intermediate"
            )
        raise ConfigurationError(
            f"market-spine-basic stores data in SQLite; database URL {mask_url(url)!r} is not "
            "a SQLite URL (use sqlite:///relative.db or sqlite:////abs/path.db)"
        )
    rest = url[len(SQLITE_SCHEME) :].split("?", 1)[0]
    if not rest:
        raise ConfigurationError(f"database URL {url!r} names no file; use sqlite:///spine.db")
    if rest == ":memory:":
        raise ConfigurationError(
            "an in-memory SQLite database keeps nothing between commands; name a file instead"
        )
    return Path(rest)


def mask_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe to print."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" not in rest.split("/", 1)[0]:
        return url
    creds, host = rest.split("@", 1)
    if ":" in creds:
        user = creds.split(":", 1)[0]
        creds = f"{user}:***"
    return f"{scheme}://{creds}@{host}"


def to_db_time(value: datetime) -> str:
    """A fixed-width UTC ISO timestamp, so text order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_db_time(value: str | None) -> datetime | None:
    """Inverse of `to_db_time`."""
    return None if value is None else datetime.fromisoformat(value)


class SqliteDatabase:
    """A thread-shareable SQLite connection with one lock and explicit transactions.

    Without `create`, a missing file is a `ConfigurationError` rather than a new empty one.
    """

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise ConfigurationError(
                f"database {self.path} does not exist; run spine db init to create it"
            )
        if self.path.parent and not self.path.parent.exists():
            raise ConfigurationError(
                f"cannot open database {self.path}: directory {self.path.parent} does not exist"
            )
        try:
            self.conn = sqlite3.connect(
                str(self.path),
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open database {self.path}: {exc}") from exc
        self.lock = threading.RLock()
        self.db = sqlite_utils.Database(self.conn)
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        if self.db.journal_mode != "wal":
            self.conn.execute("PRAGMA journal_mode = wal")
        self._closed = False

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction; roll back if it raises.

        `immediate` takes SQLite's write lock up front (`BEGIN IMMEDIATE`) so a
        read-check-write sequence cannot interleave with another writer.
        """
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        """Rows as dicts, read under the lock."""
        with self.lock:
            return list(self.db.query(sql, params))

    def scalar(self, sql: str, params: tuple | dict = ()) -> object:
        """The first column of the first row, or None."""
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def table_names(self) -> list[str]:
        """Tables and views in the file, sorted: what a user can select from."""
        with self.lock:
            return sorted(self.db.table_names() + self.db.view_names())

    def table_counts(self) -> dict[str, int]:
        """Row count of every table and view (internal SQLite tables excluded).

        Views count too: `otc_trades_raw` is one, over the raw lines as they are stored.
        """
        with self.lock:
            names = self.db.table_names() + self.db.view_names()
            return {
                name: self.db[name].count
                for name in sorted(names)
                if not name.startswith("sqlite_")
            }

    def close(self) -> None:
        """Close the connection; later calls do nothing."""
        with self.lock:
            if not self._closed:
                self._closed = True
                self.conn.close()

    def __repr__(self) -> str:
        return f"SqliteDatabase({str(self.path)!r})"
