"""`spine query`: read the OTC tables."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import click

from spine_basic.cli.context import CliError, open_runtime, run_cli_errors


def parse_date(value: str | None, option: str) -> date | None:
    """`YYYY-MM-DD` (or `YYYYMMDD`) as a date; a one-line error otherwise."""
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise CliError(f"{option} {value!r} is not a date; use YYYY-MM-DD")


def render_table(fields: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """Aligned columns with a header; numbers right-aligned."""
    cells = [[str(r[f]) for f in fields] for r in rows]
    widths = [max([len(f), *(len(c[i]) for c in cells)]) for i, f in enumerate(fields)]
    numeric = [bool(rows) and isinstance(rows[0][f], int | float) for f in fields]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(list(fields)), *(line(c) for c in cells)])


@click.group("query")
def query() -> None:
    """Query the OTC tables."""


@query.command("metrics")
@click.option("--symbol", help="Only this symbol.")
@click.option("--date", "on_date", metavar="D", help="Only this trade date (YYYY-MM-DD).")
@click.option("--from", "date_from", metavar="D", help="From this trade date, inclusive.")
@click.option("--to", "date_to", metavar="D", help="To this trade date, inclusive.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@run_cli_errors
def metrics(
    symbol: str | None,
    on_date: str | None,
    date_from: str | None,
    date_to: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """Daily OTC metrics per trade date and symbol (otc_metrics_daily)."""
    from spine_otc.metrics import METRIC_FIELDS
    from spine_otc.store import OtcStore

    if on_date and (date_from or date_to):
        raise CliError("give either --date or --from/--to, not both")
    low = parse_date(on_date or date_from, "--date" if on_date else "--from")
    high = parse_date(on_date or date_to, "--date" if on_date else "--to")
    if low and high and low > high:
        raise CliError(f"--from {low} is after --to {high}")
    runtime = open_runtime()
    store = runtime.resources.get(OtcStore)
    rows = [
        m.to_json_dict()
        for m in store.query_metrics(
            symbol=symbol.upper() if symbol else None, date_from=low, date_to=high, limit=limit
        )
    ]
    rows = [{field: row[field] for field in METRIC_FIELDS} for row in rows]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(METRIC_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    elif not rows:
        click.echo("no metrics match; run `spine run otc.daily -p file=<path>` first", err=True)
    else:
        click.echo(render_table(METRIC_FIELDS, rows))
