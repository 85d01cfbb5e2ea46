"""`spine db`: create or upgrade the database schema."""

from __future__ import annotations

import click

from spine_basic.cli.context import CliError, current_settings, current_tier, run_cli_errors
from spine_basic.database import mask_url


@click.group("db")
def db() -> None:
    """Manage the database schema."""


@db.command("init")
@run_cli_errors
def init() -> None:
    """Apply pending migrations (safe to re-run) and print the schema version."""
    from spine_basic.tier import TIER, init_database

    tier = current_tier()
    if tier.name != TIER.name:
        raise CliError(
            f"the active tier {tier.name} does not provide `spine db init`; "
            f"reinstall {tier.distribution}"
        )
    settings = current_settings(tier)
    applied, version = init_database(settings)
    where = mask_url(settings.database_url)
    if applied:
        names = ", ".join(f"{m.version} {m.name}" for m in applied)
        click.echo(f"applied {len(applied)} migration(s) to {where}: {names}")
    else:
        click.echo(f"{where} is up to date")
    click.echo(f"schema version {version}")
