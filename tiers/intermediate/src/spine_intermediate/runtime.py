"""Builds the intermediate tier's `Runtime`: PostgreSQL stores, LocalBackend, run history."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from spine_core.backend import Backend
from spine_core.errors import ConfigurationError
from spine_core.history import HistoryObserver
from spine_core.registry import Registry
from spine_core.resources import Resources
from spine_core.runner import ExecutionRunner
from spine_core.tier import Runtime, Settings, Tier, assemble_runtime
from spine_intermediate.backend import LocalBackend
from spine_intermediate.pg.connect import PgDatabase, pool_sizes
from spine_intermediate.pg.ledger import PostgresLedgerStore
from spine_intermediate.pg.otc import PostgresOtcStore
from spine_otc.store import OtcStore

DEFAULT_CONCURRENCY = 4
DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_LEASE_SECONDS = 60.0


def int_option(options: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """An integer `SPINE_<NAME>` setting, with a clear error when it is not one."""
    raw = options.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"SPINE_{name.upper()} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"SPINE_{name.upper()} must be at least {minimum}, got {value}")
    return value


def float_option(options: Mapping[str, str], name: str, default: float) -> float:
    """A number `SPINE_<NAME>` setting."""
    raw = options.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"SPINE_{name.upper()} must be a number, got {raw!r}") from None


BackendFactory = Callable[[PostgresLedgerStore, ExecutionRunner], Backend]
"""Builds a tier's backend over the ledger and the runner (the advanced tier's Celery)."""


def build_runtime(
    tier: Tier,
    settings: Settings,
    *,
    concurrency: int | None = None,
    backend: BackendFactory | None = None,
) -> Runtime:
    """Connect (pool sized by SPINE_POOL_MIN/MAX), check the schema, wire everything.

    The backend is `backend(ledger, runner)` if given, else a LocalBackend, created but not
    started: `spine worker start`, the API with SPINE_API_WORKER=embedded, or `spine run` (one
    execution in-process) start work.
    """
    low, high = pool_sizes(settings.options)
    db = PgDatabase.connect(settings.database_url, min_size=low, max_size=high)
    try:
        ledger = PostgresLedgerStore(db, owns_db=False)
    except BaseException:
        db.close()
        raise
    otc = PostgresOtcStore(db)
    resources = Resources({OtcStore: otc})
    registry = Registry()

    def make_backend(runner: ExecutionRunner) -> Backend:
        if backend is not None:
            return backend(ledger, runner)
        return LocalBackend(
            ledger,
            runner,
            concurrency=concurrency
            or int_option(settings.options, "workers", DEFAULT_CONCURRENCY, minimum=1),
            grace=float_option(settings.options, "worker_grace", DEFAULT_GRACE_SECONDS),
            heartbeat_interval=float_option(
                settings.options, "heartbeat_interval", DEFAULT_HEARTBEAT_SECONDS
            ),
            lease_seconds=float_option(settings.options, "lease_seconds", DEFAULT_LEASE_SECONDS),
        )

    return assemble_runtime(
        tier,
        settings,
        store=ledger,
        resources=resources,
        registry=registry,
        make_backend=make_backend,
        observers=lambda execution: (HistoryObserver(ledger, execution.id),),
        extras={"otc_store": otc, "database": db},
        on_close=[db.close],
    )
