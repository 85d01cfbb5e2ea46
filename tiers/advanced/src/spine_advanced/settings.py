"""The lease settings the worker, the reaper, `spine doctor` and `/health/metrics` share."""

from __future__ import annotations

from collections.abc import Mapping

from spine_intermediate.runtime import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_LEASE_SECONDS,
    float_option,
)


def lease_settings(options: Mapping[str, str]) -> tuple[float, float, float]:
    """(heartbeat interval, lease, grace) in seconds, with the LocalBackend's defaults.

    From SPINE_HEARTBEAT_INTERVAL, SPINE_LEASE_SECONDS and SPINE_WORKER_GRACE.
    """
    return (
        float_option(options, "heartbeat_interval", DEFAULT_HEARTBEAT_SECONDS),
        float_option(options, "lease_seconds", DEFAULT_LEASE_SECONDS),
        float_option(options, "worker_grace", DEFAULT_GRACE_SECONDS),
    )
