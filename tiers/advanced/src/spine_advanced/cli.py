"""The advanced tier's `spine` commands, applied after intermediate's through `Tier.extend_cli`.

Intermediate's commands stay (worker, api, runs, run --api); `db init` is the same command,
given both migration chains; `events ID` and `cancel ID` are added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from spine_basic.cli.context import open_runtime, run_cli_errors
from spine_intermediate.cli import make_db_init


def _chains() -> Sequence[tuple[Any, ...]]:
    from spine_advanced.pg.migrations import CHAINS

    return CHAINS


@click.command("events")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_cli_errors
def events(execution_id: str, as_json: bool) -> None:
    """An execution's events, oldest first."""
    from spine_basic.cli.query import render_table

    rows = [
        {
            "seq": e.seq,
            "event": e.event_type.value,
            "at": e.created_at.isoformat(),
            "payload": json.dumps(e.payload, default=str) if e.payload else "",
        }
        for e in open_runtime().dispatcher.events(execution_id)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(render_table(("seq", "event", "at", "payload"), rows))


@click.command("cancel")
@click.argument("execution_id")
@run_cli_errors
def cancel(execution_id: str) -> None:
    """Cancel: a queued execution at once, a running one at its next step boundary."""
    execution = open_runtime().dispatcher.cancel(execution_id)
    click.echo(f"{execution.name}: {execution.status.value} (execution {execution.id})")


def extend_cli(group: click.Group) -> None:
    """Replace `db init` (both chains, intermediate's first); add `events` and `cancel`."""
    db = group.commands["db"]
    assert isinstance(db, click.Group)
    db.add_command(make_db_init(_chains))
    group.add_command(events)
    group.add_command(cancel)
