"""The advanced tier's `spine` commands, applied after intermediate's through `Tier.extend_cli`.

Intermediate's commands stay (worker, api, runs, run --api); `db init` is the same command,
given both migration chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from spine_intermediate.cli import make_db_init


def _chains() -> Sequence[tuple[Any, ...]]:
    from spine_advanced.pg.migrations import CHAINS

    return CHAINS


def extend_cli(group: click.Group) -> None:
    """Replace `db init` with one that applies intermediate's chain, then the advanced chain."""
    db = group.commands["db"]
    assert isinstance(db, click.Group)
    db.add_command(make_db_init(_chains))
