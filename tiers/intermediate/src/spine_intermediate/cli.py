"""The intermediate tier's `spine` commands, applied through `Tier.extend_cli`.

Adds `worker start`, `api start`, `runs list|show|resume`, `db import-sqlite`; replaces `db init`
(PostgreSQL); wraps `run` and `query metrics` with `--api URL` (and `run --no-wait`), delegating
to basic's implementations when `--api` is absent.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import click

from spine_basic.cli.context import (
    cli_state,
    current_settings,
    current_tier,
    env_log_format,
    open_runtime,
    run_cli_errors,
)
from spine_core.execution import TriggerSource
from spine_core.log_format import configure_handler
from spine_core.tier import Runtime

log = logging.getLogger("spine.worker")

API_OPTION_HELP = "Act on the Market Spine API at URL instead of the local database."


def _console_logging(level: int = logging.INFO) -> None:
    """Console logging for long-running commands (worker, api): INFO from spine loggers.

    In `SPINE_LOG_FORMAT` (`--log-format`), with the execution fields and URL passwords masked.
    """
    handler = configure_handler(logging.StreamHandler(sys.stderr), env_log_format())
    for name in ("spine", "spine_intermediate", "spine_core"):
        logger = logging.getLogger(name)
        logger.setLevel(min(level, logger.level or level))
        logger.addHandler(handler)
        logger.propagate = False


def _install_remote_runtime(ctx: click.Context, api: str) -> Runtime:
    from spine_intermediate.remote import remote_runtime

    runtime = remote_runtime(current_tier(), api)
    cli_state(ctx).runtime = runtime
    ctx.find_root().call_on_close(runtime.close)
    return runtime


# -- run ---------------------------------------------------------------------------------------


def _wrap_run(base: click.Command) -> click.Command:
    """`spine run` plus `--api URL` and `--no-wait`; otherwise basic's `run`, run in-process."""

    @click.pass_context
    def callback(
        ctx: click.Context, api: str | None, no_wait: bool, logical_key: str | None, **kwargs: Any
    ) -> None:
        if logical_key is not None and not no_wait:
            raise click.UsageError("--logical-key needs --no-wait")
        if no_wait:
            _run_no_wait(ctx, api, kwargs, logical_key)
            return
        if api:
            _install_remote_runtime(ctx, api)
        else:
            runtime = open_runtime(ctx)
            backend = runtime.backend
            if hasattr(backend, "run_on_submit"):
                backend.run_on_submit = True  # the embedded LocalBackend runs it right here
        ctx.invoke(base, **kwargs)

    params = [
        *base.params,
        click.Option(["--api"], metavar="URL", help=API_OPTION_HELP),
        click.Option(["--no-wait"], is_flag=True, help="Submit (queue) and return at once."),
        click.Option(
            ["--logical-key"],
            metavar="KEY",
            help="With --no-wait: refuse while another execution with KEY is active "
            "(market-spine-advanced).",
        ),
    ]
    return click.Command(
        base.name,
        params=params,
        callback=callback,
        help=base.help,
        short_help=base.short_help,
        context_settings=base.context_settings,
    )


@run_cli_errors
def _run_no_wait(
    ctx: click.Context, api: str | None, kwargs: dict[str, Any], logical_key: str | None
) -> None:
    from spine_basic.cli.run import parse_params

    runtime = _install_remote_runtime(ctx, api) if api else open_runtime(ctx)
    execution = runtime.dispatcher.submit(
        kwargs["name"],
        parse_params(kwargs.get("params") or ()),
        trigger_source=TriggerSource.CLI,
        logical_key=logical_key,
    )
    if kwargs.get("as_json"):
        click.echo(json.dumps(execution.to_dict(), indent=2, default=str))
    else:
        click.echo(f"{execution.name}: {execution.status.value} (execution {execution.id})")
    for warning in execution.warnings:
        click.echo(f"warning: {warning}", err=True)


def _wrap_query_metrics(base: click.Command) -> click.Command:
    """`spine query metrics` with `--api URL`; basic's implementation does the printing."""

    @click.pass_context
    def callback(ctx: click.Context, api: str | None, **kwargs: Any) -> None:
        if api:
            _install_remote_runtime(ctx, api)
        ctx.invoke(base, **kwargs)

    params = [*base.params, click.Option(["--api"], metavar="URL", help=API_OPTION_HELP)]
    return click.Command(
        base.name,
        params=params,
        callback=callback,
        help=base.help,
        short_help=base.short_help,
        context_settings=base.context_settings,
    )


# -- worker ------------------------------------------------------------------------------------


@click.group("worker")
def worker() -> None:
    """Run executions from the queue (LocalBackend worker threads)."""


@worker.command("start")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=None,
    help="Worker threads (default SPINE_WORKERS or 4).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds in-flight work may take to finish on shutdown (default 30).",
)
@run_cli_errors
def worker_start(concurrency: int | None, grace: float | None) -> None:
    """Claim and run queued executions until SIGINT/SIGTERM.

    On a signal it stops claiming, lets in-flight executions finish within the grace period
    and hands anything still running back to the queue.
    """
    _console_logging()
    tier = current_tier()
    settings = current_settings(tier)
    if concurrency is not None:
        settings = replace(settings, options={**settings.options, "workers": str(concurrency)})
    runtime = tier.open_runtime(settings)
    backend: Any = runtime.backend
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        backend.start()
        log.info(
            "worker %s started: %d threads, database %s",
            backend.worker_id,
            backend.concurrency,
            runtime.extras["database"].target,
        )
        while not stop.wait(0.5):
            pass
        backend.stop(grace)
        log.info("worker %s stopped after %d executions", backend.worker_id, backend.completed)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()


# -- api ---------------------------------------------------------------------------------------


@click.group("api")
def api() -> None:
    """The HTTP API."""


@api.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@run_cli_errors
def api_start(host: str, port: int, log_level: str) -> None:
    """Serve the API with uvicorn (SPINE_API_WORKER=embedded|none decides who runs work)."""
    import uvicorn

    from spine_intermediate.api import create_app
    from spine_intermediate.api.security import check_bind

    _console_logging()
    tier = current_tier()
    settings = current_settings(tier)
    check_bind(host, settings.options)
    uvicorn.run(create_app(settings, tier=tier), host=host, port=port, log_level=log_level)


# -- runs --------------------------------------------------------------------------------------


@click.group("runs")
def runs() -> None:
    """Workflow run history (workflow_runs)."""


@runs.command("list")
@click.option("--workflow", help="Only runs of this workflow or pipeline.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_cli_errors
def runs_list(workflow: str | None, limit: int, as_json: bool) -> None:
    """Recent workflow runs, newest first."""
    from spine_basic.cli.query import render_table

    store: Any = open_runtime().store
    rows = [_run_row(r) for r in store.list_runs(workflow=workflow, limit=limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        click.echo("no runs yet", err=True)
    else:
        fields = ("run_id", "workflow", "version", "status", "started_at", "duration_ms")
        click.echo(render_table(fields, [{k: _cell(r[k]) for k in fields} for r in rows]))


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_cli_errors
def runs_show(run_id: str, as_json: bool) -> None:
    """One run and its steps, in the order they finished."""
    from spine_basic.cli.context import CliError
    from spine_basic.cli.query import render_table

    store: Any = open_runtime().store
    records = store.get_run(run_id)
    if not records:
        raise CliError(f"no workflow run with id {run_id!r}")
    rows = [_run_row(r) for r in records]
    if as_json:
        click.echo(json.dumps({"run": rows[0], "steps": rows[1:]}, indent=2, default=str))
        return
    head = rows[0]
    click.echo(
        f"{head['workflow']} v{head['version']}: {head['status']} "
        f"(run {head['run_id']}, execution {head['execution_id']})"
    )
    if head["error"]:
        click.echo(f"error: {head['error']}")
    if rows[1:]:
        fields = ("step", "kind", "status", "duration_ms", "error")
        click.echo(render_table(fields, [{k: _cell(r[k]) for k in fields} for r in rows[1:]]))


@runs.command("resume")
@click.argument("execution_id")
@run_cli_errors
def runs_resume(execution_id: str) -> None:
    """Continue a failed execution from its failed step (needs market-spine-advanced).

    The same execution goes back to queued as a new attempt; a running `spine worker start`
    picks it up, and steps that completed before do not run again.
    """
    execution = open_runtime().dispatcher.resume(execution_id)
    click.echo(f"execution {execution.id} resumed: {execution.status.value}")


def _run_row(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "execution_id": record.execution_id,
        "workflow": record.workflow,
        "version": record.version,
        "step": record.step,
        "kind": record.kind,
        "status": record.status,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "duration_ms": round(record.duration_ms, 1) if record.duration_ms is not None else None,
        "error": record.error,
        "category": record.category,
        "detail": record.detail,
    }


def _cell(value: Any) -> Any:
    return "" if value is None else value


# -- db ----------------------------------------------------------------------------------------


def make_db_init(chains: Callable[[], Sequence[tuple[Any, ...]]]) -> click.Command:
    """`spine db init` applying `chains()` (the tier's migration chains, lowest first)."""

    @click.command("init")
    @run_cli_errors
    def db_init() -> None:
        """Create the database if missing, apply pending migrations, print the schema version."""
        from spine_intermediate.pg.admin import init_database
        from spine_intermediate.pg.connect import redact_url

        settings = current_settings(current_tier())
        created, applied, versions = init_database(settings.database_url, chains())
        where = redact_url(settings.database_url)
        if created:
            click.echo(f"created database {where}")
        if applied:
            names = ", ".join(_migration_label(m, len(versions) > 1) for m in applied)
            click.echo(f"applied {len(applied)} migration(s) to {where}: {names}")
        else:
            click.echo(f"{where} is up to date")
        if len(versions) == 1:
            click.echo(f"schema version {next(iter(versions.values()))}")
        else:
            click.echo("schema version " + ", ".join(f"{c} {v}" for c, v in versions.items()))

    return db_init


def _migration_label(migration: Any, with_component: bool) -> str:
    label = f"{migration.version} {migration.name}"
    return f"{migration.component} {label}" if with_component else label


def _intermediate_chains() -> Sequence[tuple[Any, ...]]:
    from spine_intermediate.pg.migrations import MIGRATIONS

    return (MIGRATIONS,)


db_init = make_db_init(_intermediate_chains)


@click.command("import-sqlite")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@run_cli_errors
def db_import_sqlite(path: str) -> None:
    """Copy a basic-tier SQLite database (ledger and OTC tables) into PostgreSQL.

    Safe to re-run: rows already imported are skipped (natural keys).
    """
    from spine_intermediate.importer import import_sqlite

    runtime = open_runtime()
    report = import_sqlite(path, runtime.extras["database"])
    for table, (read, added) in report.items():
        click.echo(f"{table:<20} read {read:>8}  added {added:>8}")


def extend_cli(group: click.Group) -> None:
    """Add and replace the intermediate tier's commands on the `spine` group."""
    base_run = group.commands.get("run")
    if isinstance(base_run, click.Command):
        group.add_command(_wrap_run(base_run))
    query = group.commands.get("query")
    if isinstance(query, click.Group) and "metrics" in query.commands:
        query.add_command(_wrap_query_metrics(query.commands["metrics"]))
    db = group.commands.get("db")
    if not isinstance(db, click.Group):
        db = click.Group("db", help="Manage the database schema.")
        group.add_command(db)
    db.add_command(db_init)
    db.add_command(db_import_sqlite)
    for command in (worker, api, runs):
        group.add_command(command)
