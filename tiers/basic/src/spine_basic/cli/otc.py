"""`spine otc`: OTC domain helpers."""

from __future__ import annotations

from pathlib import Path

import click

from spine_basic.cli.context import run_cli_errors


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
@run_cli_errors
def generate(rows: int, days: int, symbols: int, seed: int, bad_rate: float, out: Path) -> None:
    """Write a deterministic FINRA short-sale file for tests and benchmarks."""
    from spine_otc.generator import generate as write_file

    result = write_file(out, rows=rows, days=days, symbols=symbols, seed=seed, bad_rate=bad_rate)
    click.echo(
        f"wrote {result.rows:,} rows ({result.bad_rows:,} bad) over {len(result.dates)} day(s), "
        f"{len(result.symbols)} symbol(s) to {result.path}"
    )
