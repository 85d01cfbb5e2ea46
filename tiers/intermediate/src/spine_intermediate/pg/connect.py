"""Connecting to PostgreSQL: URL handling, the pool, and errors that never show a password."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from spine_core.errors import ConfigurationError
from spine_intermediate.pg.loop import AsyncBridge

log = logging.getLogger(__name__)

DEFAULT_POOL_MIN = 1
DEFAULT_POOL_MAX = 10
CONNECT_TIMEOUT = 5.0
STORAGE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)
"""asyncpg's own exceptions: their text quotes keys and values, so users see only the type."""


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (safe to log or show)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, ""))


def describe_target(url: str) -> str:
    """`host:port/db` for messages: no user, no password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "<unparseable database URL>"
    db = unquote(parts.path.lstrip("/")) or (parts.username or "postgres")
    return f"{host}:{port}/{db}"


def database_name(url: str) -> str:
    """The database a URL names."""
    parts = urlsplit(url)
    return unquote(parts.path.lstrip("/")) or (parts.username or "postgres")


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def scrub_password(message: str, url: str) -> str:
    """`message` with the password of `url` (raw or percent-decoded) replaced by `***`."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        message = message.replace(password, "***").replace(unquote(password), "***")
    return message


class DatabaseUnreachable(ConfigurationError):
    """The server cannot be reached or dropped the connection (down, restarting, network).

    A `ConfigurationError` to the CLI and the API; the worker tells it apart from a bug, since
    the work it interrupts can be handed back once the server answers again.
    """


def unreachable(url: str, exc: BaseException) -> DatabaseUnreachable:
    """The error for a server that cannot be reached; never includes the password."""
    reason = scrub_password(str(exc) or type(exc).__name__, url)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason += "; create it with: spine db init"
    return DatabaseUnreachable(f"cannot reach PostgreSQL at {describe_target(url)}: {reason}")


def check_url(url: str) -> None:
    """Fail clearly on a URL that is not a PostgreSQL URL."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"the intermediate tier needs a postgresql:// database URL, got {redact_url(url)!r}"
            + (
                "; for a SQLite database use --tier basic (or SPINE_TIER=basic)"
                if scheme == "sqlite"
                else ""
            )
        )


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _release_as_is(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    The stores leave no session state behind: advisory locks are transaction-scoped, cursors
    live inside transactions, nothing LISTENs or SETs. asyncpg still rolls back a transaction
    left open before calling this, so a released connection is clean without a round trip.
    """


def pool_sizes(options: Mapping[str, str]) -> tuple[int, int]:
    """(min, max) pool size from `SPINE_POOL_MIN` / `SPINE_POOL_MAX`."""
    try:
        low = int(options.get("pool_min", DEFAULT_POOL_MIN))
        high = int(options.get("pool_max", DEFAULT_POOL_MAX))
    except ValueError as exc:
        raise ConfigurationError(f"SPINE_POOL_MIN/SPINE_POOL_MAX must be integers: {exc}") from None
    if low < 0 or high < 1 or low > high:
        raise ConfigurationError(
            "pool sizes must satisfy 0 <= SPINE_POOL_MIN <= SPINE_POOL_MAX and max >= 1; "
            f"got {low}, {high}"
        )
    return low, high


async def _create_pool(
    url: str, min_size: int, max_size: int, command_timeout: float | None
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn=url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_release_as_is,
        command_timeout=command_timeout,
        timeout=CONNECT_TIMEOUT,
    )


@dataclass
class PgDatabase:
    """One database: its bridge (private loop thread) and the asyncpg pool living on it."""

    url: str
    bridge: AsyncBridge
    pool: asyncpg.Pool

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        min_size: int = DEFAULT_POOL_MIN,
        max_size: int = DEFAULT_POOL_MAX,
        command_timeout: float | None = 60.0,
    ) -> PgDatabase:
        """Open a pool; `ConfigurationError` naming host:port/db if the server is unreachable."""
        check_url(url)
        bridge = AsyncBridge()
        try:
            pool = bridge.call(_create_pool(url, min_size, max_size, command_timeout))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            bridge.close()
            raise unreachable(url, exc) from None
        except BaseException:
            bridge.close()
            raise
        return cls(url, bridge, pool)

    @property
    def target(self) -> str:
        """`host:port/db` (no credentials)."""
        return describe_target(self.url)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the pool's loop; connection failures become `ConfigurationError`."""
        try:
            return self.bridge.call(coro)
        except (
            OSError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.AdminShutdownError,
            # A pooled connection the server closed while it sat idle (a restart) fails its
            # next query with "cannot switch to state N; another operation is in progress".
            asyncpg.exceptions.InternalClientError,
        ) as exc:
            raise unreachable(self.url, exc) from None

    def close(self) -> None:
        """Close the pool, then the loop thread."""
        try:
            self.bridge.call(asyncio.wait_for(self.pool.close(), 10))
        except Exception:  # pragma: no cover - best effort
            log.debug("pool close failed", exc_info=True)
        self.bridge.close()


async def ensure_database(url: str) -> bool:
    """Create the database `url` names if it does not exist (via the `postgres` database)."""
    name = database_name(url)
    try:
        conn = await asyncpg.connect(dsn=url, timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    admin = await asyncpg.connect(dsn=with_database(url, "postgres"), timeout=CONNECT_TIMEOUT)
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
    finally:
        await admin.close()
    return True


def create_database_if_missing(url: str) -> bool:
    """Synchronous `ensure_database`; True if it created the database."""
    check_url(url)
    bridge = AsyncBridge("spine-pg-admin")
    try:
        return bridge.call(ensure_database(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise unreachable(url, exc) from None
    finally:
        bridge.close()


def records(rows: list[Any]) -> list[dict[str, Any]]:
    """Asyncpg records as plain dicts."""
    return [dict(r) for r in rows]
