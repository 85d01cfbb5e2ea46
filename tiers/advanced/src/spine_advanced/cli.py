"""The advanced tier's `spine` commands, applied after intermediate's through `Tier.extend_cli`.

Intermediate's commands stay (api, runs, run --api); `db init` is the same command, given both
migration chains; `worker start` gains `--backend local|celery`; `events ID` and `cancel ID` are
added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from spine_basic.cli.context import current_settings, current_tier, open_runtime, run_cli_errors
from spine_intermediate.cli import _console_logging, make_db_init
from spine_intermediate.cli import worker_start as local_worker_start


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


@click.command("start")
@click.option(
    "--backend",
    type=click.Choice(["local", "celery"]),
    default=None,
    help="local: worker threads claiming from the ledger; celery: a Celery worker "
    "(default SPINE_BACKEND or local).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=None,
    help="Worker threads, or Celery pool processes (default SPINE_WORKERS or 4).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="local: seconds in-flight work may take to finish on shutdown (default 30); "
    "Celery's warm shutdown always lets in-flight work finish.",
)
@click.pass_context
@run_cli_errors
def worker_start(
    ctx: click.Context, backend: str | None, concurrency: int | None, grace: float | None
) -> None:
    """Run queued executions until SIGINT/SIGTERM, on worker threads or as a Celery worker.

    On a signal it stops taking work and lets in-flight executions finish (local: within the
    grace period, then hands the rest back to the queue).
    """
    from spine_advanced.runtime import backend_name
    from spine_intermediate.runtime import DEFAULT_CONCURRENCY, int_option

    tier = current_tier()
    settings = current_settings(tier)
    if backend is not None:
        settings = replace(settings, options={**settings.options, "backend": backend})
    if backend_name(settings) != "celery":
        ctx.invoke(local_worker_start, concurrency=concurrency, grace=grace)
        return
    from spine_advanced.celery.worker import run_worker

    _console_logging()
    run_worker(
        tier,
        settings,
        concurrency or int_option(settings.options, "workers", DEFAULT_CONCURRENCY, minimum=1),
    )


def extend_cli(group: click.Group) -> None:
    """Replace `db init` (both chains) and `worker start`; add `events` and `cancel`."""
    db = group.commands["db"]
    assert isinstance(db, click.Group)
    db.add_command(make_db_init(_chains))
    worker = group.commands["worker"]
    assert isinstance(worker, click.Group)
    worker.add_command(worker_start)
    group.add_command(events)
    group.add_command(cancel)
