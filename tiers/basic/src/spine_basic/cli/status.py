"""`spine status`: where the data lives and what is in it."""

from __future__ import annotations

import click

from spine_basic import stale
from spine_basic.cli.context import open_runtime, run_cli_errors
from spine_basic.cli.run import duration_seconds
from spine_basic.database import mask_url
from spine_core.execution import ExecutionFilter
from spine_otc.store import OtcStore


@click.command("status")
@click.option(
    "--end-stale",
    is_flag=True,
    help="Fail the executions left running by a spine process that is gone.",
)
@run_cli_errors
def status(end_stale: bool) -> None:
    """Database, schema version, row counts per table, stale runs and the latest executions."""
    runtime = open_runtime()
    store = runtime.store
    if end_stale:
        ended = stale.end_stale(store)
        for execution in ended:
            click.echo(f"ended {execution.id} ({execution.name}): {execution.error}")
        if not ended:
            click.echo("no stale executions")
        return
    click.echo(f"tier:     {runtime.tier.name} ({runtime.tier.distribution})")
    click.echo(f"database: {mask_url(runtime.settings.database_url)}")
    click.echo(f"schema:   version {store.schema_version()}")
    health = runtime.backend.health()
    click.echo(
        f"backend:  {runtime.backend.name} ({'ok' if health.healthy else 'unhealthy'}"
        f"{': ' + health.detail if health.detail else ''})"
    )
    counts = dict(store.table_counts())
    if OtcStore in runtime.resources:
        counts.update(runtime.resources.get(OtcStore).table_counts())
    if counts:
        click.echo("tables:")
        width = max(len(name) for name in counts)
        for name, count in sorted(counts.items()):
            click.echo(f"  {name:<{width}}  {count:>10,}")
    left = stale.stale_executions(store)
    for execution in left:
        click.echo(
            f"stale: {execution.id}  {execution.name} is marked running, but its process "
            f"(pid {stale.owner_pid(execution.worker_id)}) is gone"
        )
    if left:
        click.echo("  end them (failed, INFRASTRUCTURE) with: spine status --end-stale")
    latest = runtime.dispatcher.list(ExecutionFilter(limit=5))
    click.echo("latest executions:")
    if not latest:
        click.echo("  (none yet)")
    for execution in latest:
        seconds = duration_seconds(execution)
        took = f"{seconds:.2f}s" if seconds is not None else "-"
        click.echo(
            f"  {execution.id}  {execution.name:<20} {execution.status.value:<10} "
            f"{execution.created_at:%Y-%m-%d %H:%M:%S}  {took}"
        )
