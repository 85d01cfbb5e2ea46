"""`spine otc`: OTC domain helpers."""

from __future__ import annotations

from pathlib import Path

import click

from spine_basic.cli.context import cli_state, current_settings, run_cli_errors
from spine_basic.cli.run import LAST_EXECUTION
from spine_basic.database import mask_url


@click.group("otc")
def otc() -> None:
    """OTC domain tools."""


@otc.command("generate")
@click.option("--rows", type=click.IntRange(min=0), required=True, help="Data rows to write.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Trading days the rows spread over.",
)
@click.option(
    "--symbols", type=click.IntRange(min=1), default=5, show_default=True, help="How many symbols."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Same seed and arguments give the same file.",
)
@click.option(
    "--bad-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of rows made invalid on purpose.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the file.",
)
@click.option(
    "--zip-parts",
    type=click.IntRange(min=1),
    default=None,
    help="Instead of one text file, write this many ZIP parts as FINRA splits a month: "
    "OUT's stem _1.zip, _2.zip, ... beside OUT.",
)
@run_cli_errors
def generate(
    rows: int, days: int, symbols: int, seed: int, bad_rate: float, out: Path, zip_parts: int | None
) -> None:
    """Write a deterministic FINRA short-sale file for tests and benchmarks."""
    from spine_otc.generator import generate as write_file
    from spine_otc.generator import zip_parts as write_parts

    result = write_file(out, rows=rows, days=days, symbols=symbols, seed=seed, bad_rate=bad_rate)
    where = str(result.path)
    if zip_parts is not None:
        parts = write_parts(result, zip_parts, out.parent, out.stem)
        result.path.unlink()
        where = ", ".join(str(part) for part in parts)
    click.echo(
        f"wrote {result.rows:,} rows ({result.bad_rows:,} bad) over {len(result.dates)} day(s), "
        f"{len(result.symbols)} symbol(s) to {where}"
    )


def _command(ctx: click.Context, *path: str) -> click.Command:
    """The command at `path` in this invocation's `spine` table (after tier extensions)."""
    root = ctx.find_root()
    command: click.Command | None = root.command
    for name in path:
        command = command.get_command(root, name) if isinstance(command, click.Group) else None
        if command is None:
            raise click.UsageError(f"`spine {' '.join(path)}` is not available in this tier")
    return command


@otc.command("demo")
@click.pass_context
@run_cli_errors
def demo(ctx: click.Context) -> None:
    """Run otc.daily on the shipped sample, then print the daily metrics (safe to re-run).

    It invokes the active tier's own `db init`, `run otc.daily -p file=<sample>` and
    `query metrics` commands, so what it prints is exactly what they print.
    """
    from spine_otc.sample import sample_path

    sample = sample_path()
    click.echo(
        "Market Spine demo: initialize the database, run the otc.daily workflow (ingest ->\n"
        "normalize -> daily metrics) on the FINRA-format sample shipped with spine-otc, then\n"
        "print the daily metrics."
    )
    click.echo(
        f"  database: {mask_url(current_settings().database_url)} (--db or SPINE_DATABASE_URL)"
    )
    click.echo(f"  sample:   {sample}")

    click.echo("\n$ spine db init")
    ctx.invoke(_command(ctx, "db", "init"))

    click.echo(f"\n$ spine run otc.daily -p file={sample}")
    ctx.invoke(_command(ctx, "run"), name="otc.daily", params=(f"file={sample}",))
    execution = cli_state(ctx).extras.get(LAST_EXECUTION)
    ingest = ((execution.result or {}).get("outputs") or {}).get("ingest") if execution else None
    if ingest and ingest.get("duplicate"):
        click.echo(
            "(this file was ingested before: same content hash, so nothing was added; the\n"
            " metrics below are the ones already stored)"
        )

    click.echo("\n$ spine query metrics")
    ctx.invoke(_command(ctx, "query", "metrics"))
    click.echo(
        "\nNext: spine query metrics --symbol AAPL --format json, spine status, spine list;\n"
        "docs/tutorial/01-basic.md walks through generating files, quality gates and reruns."
    )
