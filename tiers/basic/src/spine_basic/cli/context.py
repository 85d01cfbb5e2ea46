"""What every `spine` command shares: the global options, the runtime, the error handling.

Commands added by higher tiers (through `Tier.extend_cli`) reuse these::

    from spine_basic.cli.context import open_runtime, run_cli_errors

    @click.command("worker")
    @run_cli_errors
    def worker() -> None:
        runtime = open_runtime()          # the active tier's runtime, closed with the command
        ...
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from spine_core.errors import SpineError, storage_failure
from spine_core.log_format import LOG_FORMAT_OPTION, configure_handler, log_format, mask_secrets
from spine_core.tier import DATABASE_URL_ENV, TIER_ENV, Runtime, Settings, Tier, active_tier

F = TypeVar("F", bound=Callable[..., Any])
LOG_FORMAT_ENV = "SPINE_LOG_FORMAT"
log = logging.getLogger("spine.cli")


class CliError(SpineError):
    """A mistake on the command line that click cannot see (a malformed `-p`, a bad date)."""


@dataclass
class CliState:
    """Per-invocation state, kept in the root click context's `obj`."""

    debug: bool = False
    runtime: Runtime | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def cli_state(ctx: click.Context | None = None) -> CliState:
    """The invocation's state (created on first use)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def is_debug(ctx: click.Context | None = None) -> bool:
    """Whether `--debug` was given."""
    try:
        return cli_state(ctx).debug
    except RuntimeError:
        return False


def redacted_url(url: str) -> str:
    """`url` with any password replaced by `***`, fit for a log line."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def current_tier() -> Tier:
    """The active tier: `--tier`, else `SPINE_TIER`, else the highest installed."""
    return active_tier(os.environ.get(TIER_ENV) or None)


def current_settings(tier: Tier | None = None) -> Settings:
    """Settings from the environment (`--db` has already set `SPINE_DATABASE_URL`)."""
    tier = tier or current_tier()
    return Settings.from_env(tier.default_database_url)


def database_url(tier: Tier | None = None) -> str:
    """The database URL in force for this invocation."""
    return current_settings(tier).database_url


def open_runtime(ctx: click.Context | None = None) -> Runtime:
    """The active tier's runtime for this invocation: opened once, closed when the CLI exits."""
    ctx = ctx or click.get_current_context()
    state = cli_state(ctx)
    if state.runtime is None:
        tier = current_tier()
        settings = current_settings(tier)
        log.debug("tier %s, database %s", tier.name, redacted_url(settings.database_url))
        runtime = tier.open_runtime(settings)
        state.runtime = runtime
        root = ctx.find_root()

        def close() -> None:
            state.runtime = None
            runtime.close()

        root.call_on_close(close)
        warn_stale(runtime)
    return state.runtime


def warn_stale(runtime: Runtime) -> None:
    """One stderr line per run a dead `spine` process left running (basic's ledger only)."""
    from spine_basic import stale
    from spine_basic.ledger import SqliteLedgerStore

    if not isinstance(runtime.store, SqliteLedgerStore):
        return
    for execution in stale.stale_executions(runtime.store):
        click.echo(
            f"warning: execution {execution.id} ({execution.name}) is marked running but its "
            f"process (pid {stale.owner_pid(execution.worker_id)}) is gone; "
            "end it with: spine status --end-stale",
            err=True,
        )


def echo_error(message: str) -> None:
    """One line on stderr: `error: <message>`, with any URL password masked."""
    first, *rest = mask_secrets(str(message)).strip().splitlines() or [""]
    if rest:
        first = first + " " + " ".join(line.strip() for line in rest if line.strip())
    click.echo(f"error: {first}", err=True)


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process its closed pipe ended (128 + SIGPIPE)."""


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextmanager
def cli_errors(debug: bool | None = None) -> Iterator[None]:
    """Turn exceptions into one `error:` line on stderr and exit code 1.

    A `SpineError` prints its message; anything else prints its type as well and suggests
    `--debug`, which prints the traceback too. Click's own exceptions pass through.
    """
    try:
        yield
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except SpineError as exc:
        if is_debug() if debug is None else debug:
            traceback.print_exc(file=sys.stderr)
        echo_error(str(exc))
        raise click.exceptions.Exit(1) from None
    except KeyboardInterrupt:
        echo_error("interrupted")
        raise click.exceptions.Exit(130) from None
    except BrokenPipeError:
        # The reader left (`spine ... | head`): nothing to say, and nowhere to say it.
        _drop_stdout()
        raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None
    except Exception as exc:
        if is_debug() if debug is None else debug:
            traceback.print_exc(file=sys.stderr)
            echo_error(f"{type(exc).__name__}: {exc}")
        elif _is_storage_error(exc):
            echo_error(storage_failure(exc))
        else:
            echo_error(f"{type(exc).__name__}: {exc} (use --debug for the traceback)")
        raise click.exceptions.Exit(1) from None


def _is_storage_error(exc: Exception) -> bool:
    """Whether the active tier's database driver raised `exc` (its text quotes keys and rows)."""
    try:
        return isinstance(exc, current_tier().storage_errors())
    except SpineError:
        return False


def run_cli_errors(fn: F) -> F:
    """Decorator for a command callback: errors become one `error:` line, exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with cli_errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _DropTracebacks(logging.Filter):
    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug:
            return True
        # Exceptions logged with a traceback also reach the user through the execution's
        # error; repeating them as a traceback would bury the one-line message.
        return record.exc_info is None


_HANDLER: logging.Handler | None = None


def env_log_format() -> str:
    """`SPINE_LOG_FORMAT` (which `--log-format` sets): text or json."""
    return log_format({LOG_FORMAT_OPTION: os.environ.get(LOG_FORMAT_ENV, "")})


def configure_logging(debug: bool) -> None:
    """Console logging on stderr: warnings and up; with `--debug`, info and tracebacks.

    In `SPINE_LOG_FORMAT` (text or json), with the execution fields and URL passwords masked.
    """
    global _HANDLER
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    handler = logging.StreamHandler(sys.stderr)
    configure_handler(handler, env_log_format(), text_pattern="%(levelname)s %(name)s: %(message)s")
    handler.addFilter(_DropTracebacks(debug))
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    _HANDLER = handler


def set_env_for_invocation(ctx: click.Context, name: str, value: str) -> None:
    """Set an environment variable for this process, restored when the root context closes.

    Restoring keeps in-process invocations (tests, `CliRunner`) independent of each other.
    """
    previous = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous

    ctx.find_root().call_on_close(restore)


__all__ = [
    "DATABASE_URL_ENV",
    "TIER_ENV",
    "CliError",
    "CliState",
    "cli_errors",
    "cli_state",
    "configure_logging",
    "current_settings",
    "current_tier",
    "database_url",
    "echo_error",
    "is_debug",
    "open_runtime",
    "run_cli_errors",
    "set_env_for_invocation",
]
