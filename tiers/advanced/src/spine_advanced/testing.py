"""Test helpers of the advanced tier: the intermediate test pipelines plus `test.flagged`.

`SPINE_PIPELINE_MODULES=spine_advanced.testing:register_test_pipelines`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from spine_core import Registry, Step, Workflow
from spine_core.retry import RetryPolicy
from spine_intermediate.testing import register_test_pipelines as register_intermediate

log = logging.getLogger("spine.test.flagged")


class FlaggedParams(BaseModel):
    """Params of `test.flagged`: it fails until the file `flag` exists."""

    flag: str


def _needs_flag(ctx: Any) -> dict[str, str]:
    flag = Path(ctx.params["flag"])
    log.warning("looking for %s", flag)
    if not flag.exists():
        raise ConnectionError(f"{flag.name} is missing")
    return {"found": flag.name}


FLAGGED = Workflow(
    "test.flagged",
    (Step.lambda_("check", _needs_flag, retry=RetryPolicy(max_attempts=2, initial_interval=0.05)),),
    params_model=FlaggedParams,
)
"""Fails twice (its retries used up: dead-lettered) until the cause is fixed: the flag file."""


def register_test_pipelines(registry: Registry) -> None:
    """Intermediate's test pipelines and `test.flagged`."""
    register_intermediate(registry)
    registry.add(FLAGGED)
