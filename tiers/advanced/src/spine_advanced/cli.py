"""The advanced tier's `spine` commands, applied after intermediate's through `Tier.extend_cli`.

Intermediate's commands stay (api, runs, run --api); `db init` is the same command, given both
migration chains; `worker start` gains `--backend local|celery`; `events ID`, `cancel ID`,
`dlq list|show|retry|discard` and `doctor` are added.
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


def _letters() -> Any:
    return open_runtime().extras["dead_letters"]


def _letter_state(letter: Any) -> str:
    if letter.retried_as is not None:
        return f"retried as {letter.retried_as}"
    return "discarded" if letter.discarded_at is not None else "open"


@click.group("dlq")
def dlq() -> None:
    """Dead letters: executions whose retries are used up, to retry or discard."""


@dlq.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only those not retried or discarded.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_cli_errors
def dlq_list(open_only: bool, limit: int, as_json: bool) -> None:
    """Dead letters, newest first."""
    from spine_basic.cli.query import render_table

    letters = _letters().list_dead_letters(limit=limit, open_only=open_only)
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in letters], indent=2))
    elif not letters:
        click.echo("no dead letters", err=True)
    else:
        rows = [
            {
                "id": d.id,
                "execution": d.execution_id,
                "reason": d.reason,
                "attempts": d.attempts,
                "at": d.created_at.isoformat(timespec="seconds"),
                "state": _letter_state(d),
            }
            for d in letters
        ]
        click.echo(render_table(("id", "execution", "reason", "attempts", "at", "state"), rows))


@dlq.command("show")
@click.argument("dead_letter_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_cli_errors
def dlq_show(dead_letter_id: str, as_json: bool) -> None:
    """One dead letter and its execution's last error."""
    letter = _letters().get_dead_letter(dead_letter_id)
    if as_json:
        click.echo(json.dumps(letter.to_dict(), indent=2))
        return
    execution = open_runtime().dispatcher.get(letter.execution_id)
    click.echo(f"dead letter {letter.id}: {_letter_state(letter)}")
    click.echo(f"execution:  {letter.execution_id} ({execution.name})")
    click.echo(f"reason:     {letter.reason}")
    click.echo(f"attempts:   {letter.attempts}")
    click.echo(f"at:         {letter.created_at.isoformat()}")
    click.echo(f"error:      {letter.error} [{letter.error_category}]")


@dlq.command("retry")
@click.argument("dead_letter_id")
@run_cli_errors
def dlq_retry(dead_letter_id: str) -> None:
    """Retry: a new execution of the same work whose parent is the dead one.

    A running `spine worker start` picks it up. Refused if it was already retried or discarded.
    """
    from spine_core.dead_letters import retry_dead_letter

    runtime = open_runtime()
    execution = retry_dead_letter(runtime.dispatcher, _letters(), dead_letter_id)
    click.echo(
        f"dead letter {dead_letter_id} retried as execution {execution.id} "
        f"({execution.name}): {execution.status.value}"
    )


@dlq.command("discard")
@click.argument("dead_letter_id")
@run_cli_errors
def dlq_discard(dead_letter_id: str) -> None:
    """Close a dead letter without a retry; the record stays."""
    _letters().discard(dead_letter_id)
    click.echo(f"dead letter {dead_letter_id} discarded")


@click.command("doctor")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per check, or a JSON list.",
)
@run_cli_errors
def doctor(fmt: str) -> None:
    """Check database, migrations, broker, workers, stuck runs, dead letters and leases.

    Each check is ok, warn or fail; the exit status is 1 when any check fails.
    """
    from spine_advanced.doctor import FAIL, run_checks

    tier = current_tier()
    checks = run_checks(tier, current_settings(tier))
    if fmt == "json":
        click.echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            click.echo(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
    if any(c.status == FAIL for c in checks):
        raise click.exceptions.Exit(1)


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
    """Replace `db init` (both chains) and `worker start`; add events, cancel, dlq, doctor."""
    db = group.commands["db"]
    assert isinstance(db, click.Group)
    db.add_command(make_db_init(_chains))
    worker = group.commands["worker"]
    assert isinstance(worker, click.Group)
    worker.add_command(worker_start)
    for command in (events, cancel, dlq, doctor):
        group.add_command(command)
