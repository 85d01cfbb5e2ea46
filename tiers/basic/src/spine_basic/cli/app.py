"""The `spine` group: global options and a command table every installed tier can extend.

The table is built lazily, once per active tier: basic's built-in commands first, then, for
each installed tier whose rank is at most the active tier's, in rank order, `tier.extend_cli(
group)` — which may add commands or replace same-named ones (`group.add_command(cmd)`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib.metadata import distributions
from typing import Any

import click

from spine_basic.cli.context import (
    LOG_FORMAT_ENV,
    cli_errors,
    cli_state,
    configure_logging,
    echo_error,
    is_debug,
    set_env_for_invocation,
)
from spine_core.errors import MissingCapability, SpineError
from spine_core.log_format import LOG_FORMATS
from spine_core.tier import DATABASE_URL_ENV, TIER_ENV, Tier, active_tier, installed_tiers

BuiltinFactory = Callable[[], list[click.Command]]

COMMANDS_OF_HIGHER_TIERS = {
    "worker": "market-spine-intermediate",
    "api": "market-spine-intermediate",
    "runs": "market-spine-intermediate",
    "doctor": "market-spine-advanced",
    "dlq": "market-spine-advanced",
    "cleanup": "market-spine-full",
}
"""Commands a higher tier brings, so asking for one says what to install instead of 'no such'."""


def spine_distributions() -> list[tuple[str, str]]:
    """(name, version) of every installed Market Spine distribution, sorted by name."""
    found: dict[str, str] = {}
    for dist in distributions():
        name = (dist.metadata["Name"] or "").strip()
        normalized = name.lower().replace("_", "-")
        if normalized.startswith(("spine-", "market-spine")):
            found[normalized] = dist.version
    return sorted(found.items())


def version_text() -> str:
    """Every installed spine distribution with its version, and the active tier."""
    lines = [f"{name} {version}" for name, version in spine_distributions()]
    try:
        tier = active_tier()
        lines.append(f"active tier: {tier.name} ({tier.distribution})")
    except SpineError as exc:
        lines.append(f"active tier: none ({exc})")
    return "\n".join(lines)


class SpineGroup(click.Group):
    """A click group whose commands come from the basic tier plus every tier's `extend_cli`."""

    def __init__(self, *args: Any, builtins: BuiltinFactory, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._builtins = builtins
        self._built_for: str | None = None

    # -- the command table --------------------------------------------------------------------

    def _active(self) -> tuple[Tier | None, list[Tier]]:
        try:
            tiers = installed_tiers()
        except Exception as exc:  # a broken tier package must not take the CLI down
            if is_debug():
                raise
            echo_error(f"could not load the installed tiers: {type(exc).__name__}: {exc}")
            return None, []
        try:
            return active_tier(), tiers
        except SpineError:
            # An unknown --tier is reported when a command opens the runtime.
            return None, tiers

    def build_commands(self) -> None:
        """(Re)build the command table for the active tier, if it changed."""
        tier, tiers = self._active()
        key = tier.name if tier else ""
        if self._built_for == key:
            return
        self.commands = {}
        for command in self._builtins():
            # Fresh copies, so an extension that mutates a built-in group (adds `db migrate`)
            # never leaks into an invocation under another tier in the same process.
            self.add_command(copy.deepcopy(command))
        if tier is not None:
            for other in tiers:
                if other.rank <= tier.rank and other.extend_cli is not None:
                    try:
                        other.extend_cli(self)
                    except Exception as exc:
                        if is_debug():
                            raise
                        echo_error(
                            f"tier {other.name} could not extend the CLI: "
                            f"{type(exc).__name__}: {exc}"
                        )
        self._built_for = key

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, after extensions."""
        self.build_commands()
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called `cmd_name`, after extensions."""
        self.build_commands()
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS_OF_HIGHER_TIERS:
            raise self._missing_tier(cmd_name, COMMANDS_OF_HIGHER_TIERS[cmd_name])
        return command

    def _missing_tier(self, cmd_name: str, distribution: str) -> SpineError:
        tier, tiers = self._active()
        active = tier.name if tier else "none"
        if any(t.distribution == distribution for t in tiers):
            return SpineError(
                f"spine {cmd_name} needs {distribution}, which is installed but not active "
                f"(active tier: {active}, chosen by --tier or SPINE_TIER)"
            )
        return MissingCapability(f"spine {cmd_name}", distribution, active)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; any error becomes one `error:` line (a traceback with --debug)."""
        with cli_errors():
            return super().invoke(ctx)


def _set_tier(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        set_env_for_invocation(ctx, TIER_ENV, value)
    return value


def _set_db(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        set_env_for_invocation(ctx, DATABASE_URL_ENV, value)
    return value


def _set_log_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        set_env_for_invocation(ctx, LOG_FORMAT_ENV, value)
    return value


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    cli_state(ctx).debug = bool(value)
    return value


def make_main(builtins: BuiltinFactory) -> SpineGroup:
    """Build the `spine` group over a factory of built-in commands."""

    @click.group(
        cls=SpineGroup,
        builtins=builtins,
        invoke_without_command=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option(
        "--tier",
        metavar="NAME",
        expose_value=False,
        is_eager=True,
        callback=_set_tier,
        help="Use this installed tier (sets SPINE_TIER); default: the highest installed.",
    )
    @click.option(
        "--db",
        metavar="URL",
        expose_value=False,
        is_eager=True,
        callback=_set_db,
        help="Database URL (sets SPINE_DATABASE_URL); default: the active tier's.",
    )
    @click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS),
        expose_value=False,
        is_eager=True,
        callback=_set_log_format,
        help="Log lines as text or json (sets SPINE_LOG_FORMAT); default text.",
    )
    @click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show tracebacks and debug logging.",
    )
    @click.option(
        "--version",
        "show_version",
        is_flag=True,
        help="Show every installed spine distribution and the active tier.",
    )
    @click.pass_context
    def main(ctx: click.Context, show_version: bool) -> None:
        """Market Spine: market-data pipelines with a durable execution ledger."""
        configure_logging(is_debug(ctx))
        if show_version:
            click.echo(version_text())
            ctx.exit(0)
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())
            ctx.exit(0)

    return main  # type: ignore[return-value]
