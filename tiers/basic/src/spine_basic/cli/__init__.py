"""The `spine` command: basic's built-in commands plus whatever installed tiers add.

Extension contract (for higher tiers): set `Tier.extend_cli` to a function taking the `spine`
click group; it may `group.add_command(cmd)` to add or replace commands. Reuse
`spine_basic.cli.context.open_runtime` and `run_cli_errors` inside commands.
"""

from __future__ import annotations

import click

from spine_basic.cli.app import SpineGroup, make_main, spine_distributions, version_text


def builtin_commands() -> list[click.Command]:
    """The basic tier's commands, before any tier extends the table."""
    from spine_basic.cli.db import db
    from spine_basic.cli.listing import list_
    from spine_basic.cli.otc import otc
    from spine_basic.cli.query import query
    from spine_basic.cli.run import run
    from spine_basic.cli.shell import shell
    from spine_basic.cli.status import status

    return [db, run, list_, query, shell, status, otc]


main: SpineGroup = make_main(builtin_commands)
"""The `spine` console script."""

__all__ = [
    "SpineGroup",
    "builtin_commands",
    "main",
    "make_main",
    "spine_distributions",
    "version_text",
]
