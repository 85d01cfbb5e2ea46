"""What each tier can run, and which distribution to install for what it cannot."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """A feature a tier may or may not provide."""

    LAMBDA_STEP = "lambda_step"
    PIPELINE_STEP = "pipeline_step"
    CHOICE_STEP = "choice_step"
    MAP_STEP = "map_step"
    WAIT_STEP = "wait_step"
    SUBWORKFLOW_STEP = "subworkflow_step"
    RUN_HISTORY = "run_history"
    EVENTS = "events"
    QUEUE = "queue"
    DEAD_LETTERS = "dead_letters"
    CONCURRENCY_KEYS = "concurrency_keys"
    RETRY_POLICY = "retry_policy"
    CHECKPOINTS = "checkpoints"
    CANCEL = "cancel"
    VERSIONING = "versioning"


INTRODUCED_BY: dict[Capability, str] = {
    Capability.LAMBDA_STEP: "market-spine-basic",
    Capability.PIPELINE_STEP: "market-spine-basic",
    Capability.CHOICE_STEP: "market-spine-intermediate",
    Capability.RUN_HISTORY: "market-spine-intermediate",
    Capability.EVENTS: "market-spine-intermediate",
    Capability.QUEUE: "market-spine-intermediate",
    Capability.MAP_STEP: "market-spine-advanced",
    Capability.WAIT_STEP: "market-spine-advanced",
    Capability.DEAD_LETTERS: "market-spine-advanced",
    Capability.CONCURRENCY_KEYS: "market-spine-advanced",
    Capability.RETRY_POLICY: "market-spine-advanced",
    Capability.CHECKPOINTS: "market-spine-advanced",
    Capability.CANCEL: "market-spine-advanced",
    Capability.SUBWORKFLOW_STEP: "market-spine-full",
    Capability.VERSIONING: "market-spine-full",
}
"""The lowest tier distribution that provides each capability."""


def capabilities_up_to(distribution: str) -> frozenset[Capability]:
    """Everything provided by `distribution` and the tiers below it."""
    order = [
        "market-spine-basic",
        "market-spine-intermediate",
        "market-spine-advanced",
        "market-spine-full",
    ]
    allowed = set(order[: order.index(distribution) + 1])
    return frozenset(cap for cap, dist in INTRODUCED_BY.items() if dist in allowed)
