"""Tiers: which installed distribution is active, and what it builds.

Each tier registers a `Tier` under the `spine.tiers` entry-point group. Installing a higher
tier upgrades the same `spine` command in place: the highest rank wins unless `SPINE_TIER`
(or `--tier`) names another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from spine_core.backend import Backend
from spine_core.capabilities import Capability
from spine_core.dispatcher import Dispatcher
from spine_core.errors import ConfigurationError, StorageErrorTypes, install_command
from spine_core.ports import LedgerStore
from spine_core.registry import Registry, load_pipeline_modules
from spine_core.resources import Resources
from spine_core.runner import ExecutionRunner, ObserverFactory

TIERS_ENTRY_POINT_GROUP = "spine.tiers"
TIER_ENV = "SPINE_TIER"
DATABASE_URL_ENV = "SPINE_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    """Where the data lives and how to run; from the environment unless given."""

    database_url: str
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, default_database_url: str, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """`SPINE_DATABASE_URL` and every other `SPINE_*` variable."""
        env = os.environ if environ is None else environ
        options = {k[len("SPINE_") :].lower(): v for k, v in env.items() if k.startswith("SPINE_")}
        return cls(env.get(DATABASE_URL_ENV) or default_database_url, options)


@dataclass
class Runtime:
    """What a tier opens for one process: store, backend, dispatcher, resources."""

    tier: Tier
    settings: Settings
    store: LedgerStore
    backend: Backend
    dispatcher: Dispatcher
    registry: Registry
    resources: Resources
    extras: dict[str, Any] = field(default_factory=dict)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop the backend and release connections, last opened first."""
        self.backend.stop()
        for closer in reversed(self.on_close):
            closer()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Tier:
    """A tier distribution: its rank, what it can do, and how it builds a runtime."""

    name: str
    distribution: str
    rank: int
    capabilities: frozenset[Capability]
    default_database_url: str
    open: Callable[[Settings], Runtime]
    extend_cli: Callable[[Any], None] | None = None
    """Adds or replaces `spine` commands (a click group is passed); applied in rank order."""
    extend_api: Callable[[Any], None] | None = None
    """Mounts the tier's API routes (the app is passed); applied in rank order, before the 501
    answers for endpoints that no installed tier up to the active one serves."""
    storage_errors: Callable[[], StorageErrorTypes] = lambda: ()
    """Its database driver's exception types, which runs and commands show by type only
    (see `storage_failure`); a function, so that loading the tier imports no driver."""

    def open_runtime(self, settings: Settings | None = None) -> Runtime:
        """Build a runtime from `settings`, or from the environment."""
        return self.open(settings or Settings.from_env(self.default_database_url))


def assemble_runtime(
    tier: Tier,
    settings: Settings,
    *,
    store: LedgerStore,
    resources: Resources,
    make_backend: Callable[[ExecutionRunner], Backend],
    registry: Registry | None = None,
    observers: ObserverFactory | None = None,
    extras: Mapping[str, Any] | None = None,
    on_close: Sequence[Callable[[], None]] = (),
) -> Runtime:
    """Wire runner, backend and dispatcher the same way on every tier.

    A tier only chooses its store, its resources and its backend; the rest is shared so that
    a run behaves alike on all of them.
    """
    registry = registry if registry is not None else Registry()
    load_pipeline_modules(registry, settings.options.get("pipeline_modules", ""))
    runner = ExecutionRunner(
        store=store,
        registry=registry,
        capabilities=tier.capabilities,
        tier=tier.name,
        resources=resources,
        observers=observers or (lambda execution: ()),
        storage_errors=tier.storage_errors(),
    )
    backend = make_backend(runner)
    dispatcher = Dispatcher(
        store=store,
        backend=backend,
        registry=registry,
        capabilities=tier.capabilities,
        tier=tier.name,
    )
    return Runtime(
        tier=tier,
        settings=settings,
        store=store,
        backend=backend,
        dispatcher=dispatcher,
        registry=registry,
        resources=resources,
        extras={"runner": runner, **(extras or {})},
        on_close=list(on_close),
    )


def installed_tiers() -> list[Tier]:
    """Every tier registered by an installed distribution, lowest rank first."""
    tiers = [ep.load() for ep in entry_points(group=TIERS_ENTRY_POINT_GROUP)]
    return sorted(tiers, key=lambda t: t.rank)


def active_tier(name: str | None = None) -> Tier:
    """The named tier (argument, then `SPINE_TIER`), else the highest installed."""
    tiers = installed_tiers()
    if not tiers:
        raise ConfigurationError(
            "no Market Spine tier is installed; install one, e.g. "
            + install_command("market-spine-basic")
        )
    wanted = name or os.environ.get(TIER_ENV)
    if not wanted:
        return tiers[-1]
    for tier in tiers:
        if wanted in (tier.name, tier.distribution):
            return tier
    raise ConfigurationError(
        f"tier {wanted!r} is not installed; installed: {', '.join(t.name for t in tiers)}"
    )
