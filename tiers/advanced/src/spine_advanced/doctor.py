"""`spine doctor`'s checks: each one line, ok, warn or fail, and never a traceback.

Database and migrations are checked with a connection of their own, so that a database that is
down or behind is reported as a line instead of the error opening the runtime would raise.
Everything a check prints goes through `mask_secrets`: no URL password reaches the output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spine_advanced.pg.migrations import CHAINS
from spine_advanced.pg.ops import Snapshot, snapshot
from spine_advanced.settings import lease_settings
from spine_core.log_format import mask_secrets
from spine_core.tier import Runtime, Settings, Tier
from spine_intermediate.pg.connect import PgDatabase, describe_target
from spine_intermediate.pg.migrations import require_current, schema_version

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """For `--format json`."""
        return {"check": self.name, "status": self.status, "detail": self.detail}


def _guarded(name: str, probe: Callable[[], Check]) -> Check:
    """A probe that raises becomes a fail line naming what went wrong."""
    try:
        return probe()
    except Exception as exc:
        return Check(name, FAIL, f"{type(exc).__name__}: {exc}")


def run_checks(tier: Tier, settings: Settings) -> list[Check]:
    """Every check, in order; later ones are skipped (warn) when what they need is missing."""
    return [_masked(c) for c in _checks(tier, settings)]


def _masked(check: Check) -> Check:
    return Check(check.name, check.status, mask_secrets(check.detail))


def _checks(tier: Tier, settings: Settings) -> list[Check]:
    url = settings.database_url
    heartbeat, lease, grace = lease_settings(settings.options)
    leases = _guarded("leases", lambda: lease_check(heartbeat, lease, grace))
    try:
        db = PgDatabase.connect(url, min_size=1, max_size=2)
    except Exception as exc:
        return [Check("database", FAIL, str(exc)), leases]
    try:
        checks = [Check("database", OK, f"reachable at {describe_target(url)}")]
        checks.append(_guarded("migrations", lambda: db.call(_migrations(db))))
        if checks[-1].status != OK:
            return [*checks, *_skipped("the schema must be current first"), leases]
        try:
            state: Snapshot = db.call(_snapshot(db, lease, grace))
        except Exception as exc:
            checks.append(Check("ledger", FAIL, f"cannot read it: {type(exc).__name__}: {exc}"))
            return [*checks, *_skipped("the ledger could not be read"), leases]
    finally:
        db.close()
    checks.append(_guarded("broker", lambda: _broker(tier, settings)))
    checks += [
        _workers(state, lease),
        _stuck(state, lease, grace),
        _dead_letters(state),
        leases,
    ]
    return checks


def _skipped(why: str) -> list[Check]:
    names = ("broker", "workers", "stuck", "dead letters")
    return [Check(name, WARN, f"not checked: {why}") for name in names]


async def _migrations(db: PgDatabase) -> Check:
    async with db.pool.acquire() as conn:
        have = []
        for chain in CHAINS:
            component = chain[0].component
            try:
                await require_current(conn, chain)
            except Exception as exc:
                return Check("migrations", FAIL, str(exc))
            have.append(f"{component} {await schema_version(conn, component)}/{len(chain)}")
    return Check("migrations", OK, "current: " + ", ".join(have))


async def _snapshot(db: PgDatabase, lease: float, grace: float) -> Snapshot:
    async with db.pool.acquire() as conn:
        return await snapshot(conn, lease_seconds=lease, grace=grace)


def _broker(tier: Tier, settings: Settings) -> Check:
    """The backend's own health: a broker for those that use one."""
    runtime: Runtime = tier.open_runtime(settings)
    try:
        backend: Any = runtime.backend
        if backend.name == "local":
            return Check("broker", OK, "not used (local backend)")
        health = backend.health()
        if health.healthy:
            status = OK
        elif health.info.get("broker_reachable"):
            status = WARN  # the broker answers; only its workers are missing
        else:
            status = FAIL
        return Check("broker", status, f"{backend.name}: {health.detail}")
    finally:
        runtime.close()


def _workers(state: Snapshot, lease: float) -> Check:
    if state.live_workers:
        return Check("workers", OK, f"{state.live_workers} alive (heartbeat within {lease:g}s)")
    return Check(
        "workers", WARN, "none alive: queued work waits; start one with spine worker start"
    )


def _stuck(state: Snapshot, lease: float, grace: float) -> Check:
    labels = {
        "queued": f"queued and due for over {lease:g}s",
        "running": "running with an expired lease",
        "cancelling": f"cancelling for over {grace:g}s",
    }
    found = [f"{n} {labels[kind]}" for kind, n in state.stuck.items() if n]
    if not found:
        return Check("stuck", OK, "no stuck executions")
    return Check("stuck", WARN, "; ".join(found))


def _dead_letters(state: Snapshot) -> Check:
    if not state.dead_letters:
        return Check("dead letters", OK, "none open")
    return Check("dead letters", WARN, f"{state.dead_letters} open: see spine dlq list")


def lease_check(heartbeat: float, lease: float, grace: float) -> Check:
    """A lease must outlast a few heartbeats, or live workers lose their executions."""
    values = f"heartbeat every {heartbeat:g}s, lease {lease:g}s, grace {grace:g}s"
    if heartbeat <= 0:
        return Check("leases", FAIL, f"{values}: the heartbeat interval must be positive")
    if lease <= 0:
        return Check("leases", WARN, f"{values}: the reaper is off; a dead worker's runs stay")
    if heartbeat >= lease:
        return Check(
            "leases", FAIL, f"{values}: leases expire before the next heartbeat renews them"
        )
    if heartbeat * 3 > lease:
        return Check("leases", WARN, f"{values}: one or two late heartbeats expire a lease")
    return Check("leases", OK, values)
