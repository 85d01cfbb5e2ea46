"""`spine run NAME -p key=value`: run a pipeline or workflow and wait for it."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from spine_basic.cli.context import CliError, cli_state, log, open_runtime, run_cli_errors
from spine_basic.stale import end_interrupted
from spine_core.execution import Execution, TriggerSource
from spine_core.status import ExecutionStatus
from spine_core.tier import Runtime

LAST_EXECUTION = "last_execution"
"""Key in `CliState.extras` under which `spine run` leaves the execution it waited for."""


def parse_param(text: str) -> tuple[str, Any]:
    """`key=value`; the value is JSON when it parses as JSON, otherwise the string itself."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CliError(f"bad parameter {text!r}: expected key=value")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """Every `-p` option as a dict; a repeated key is an error."""
    params: dict[str, Any] = {}
    for item in items:
        key, value = parse_param(item)
        if key in params:
            raise CliError(f"parameter {key!r} given twice")
        params[key] = value
    return params


def duration_seconds(execution: Execution) -> float | None:
    """Seconds from start to finish, if both are known."""
    if execution.started_at and execution.finished_at:
        return (execution.finished_at - execution.started_at).total_seconds()
    return None


def format_quality(quality: dict[str, Any] | None) -> str:
    """`records=3000 valid=2991 invalid=9` (and custom metrics that are non-zero)."""
    if not quality:
        return ""
    parts = [
        f"records={quality.get('record_count', 0)}",
        f"valid={quality.get('valid_count', 0)}",
        f"invalid={quality.get('invalid_count', 0)}",
    ]
    parts += [f"{k}={v:g}" for k, v in (quality.get("custom") or {}).items() if v]
    return " ".join(parts)


def summary_lines(execution: Execution) -> list[str]:
    """A short human summary: id, status, duration, then one line per step."""
    seconds = duration_seconds(execution)
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    lines = [f"{execution.name}: {execution.status.value}{took} (execution {execution.id})"]
    for step in (execution.result or {}).get("steps", []):
        duration = step.get("duration_ms")
        took = f"{duration / 1000:7.2f}s" if duration is not None else " " * 8
        lines.append(
            f"  {step.get('step', '?'):<20} {step.get('status', '?'):<8} {took}  "
            f"{format_quality(step.get('quality'))}".rstrip()
        )
        for gate in step.get("gates") or []:
            if not gate.get("passed"):
                lines.append(f"    {gate.get('message')}")
        lines += replacement_lines(step.get("output"))
    return lines


def log_steps(execution: Execution) -> None:
    """With `--debug`: each step's status, time and gates (passing ones too), then the end."""
    for step in (execution.result or {}).get("steps", []):
        seconds = (step.get("duration_ms") or 0) / 1000
        log.debug("step %s: %s in %.3fs", step.get("step"), step.get("status"), seconds)
        for gate in step.get("gates") or []:
            log.debug("  %s", gate.get("message"))
    seconds = duration_seconds(execution)
    log.debug("execution %s %s in %.3fs", execution.id, execution.status.value, seconds or 0.0)


def replacement_lines(output: Any) -> list[str]:
    """One line per earlier batch a restatement replaced (`otc.normalize`'s `replaced`)."""
    if not isinstance(output, dict):
        return []
    return [
        f"    restated: batch {r['batch_id']} on {', '.join(r['dates'])}: "
        f"{r['trades_before']} trades replaced by {r['trades_after']}"
        for r in output.get("replaced") or []
    ]


@contextmanager
def ends_interrupted_runs(runtime: Runtime) -> Iterator[None]:
    """Ctrl-C or SIGTERM: end this process's running executions as failed, "interrupted".

    SIGTERM is raised as KeyboardInterrupt, so both unwind the run the same way (open
    transactions roll back); further signals are ignored while the ledger is updated. The
    error then reaches `cli_errors`, which prints `error: interrupted` and exits 130.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # An in-process worker backend (intermediate) claims as its own worker id.
        end_interrupted(runtime.store, getattr(runtime.backend, "worker_id", None))
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def ingest_progress(runtime: Runtime) -> Iterator[None]:
    """A progress bar on stderr while a file is read, when stderr is a terminal."""
    relay = runtime.extras.get("ingest_progress")
    if relay is None or not _stderr_is_terminal():
        yield
        return
    bar: Any = None
    shown = 0

    def report(bytes_read: int, total: int) -> None:
        nonlocal bar, shown
        if total < 8 * 1024 * 1024:  # small files finish before a bar helps
            return
        if bar is None:
            bar = click.progressbar(length=total, label="reading", file=sys.stderr, width=30)
            bar.__enter__()
        bar.update(bytes_read - shown)
        shown = bytes_read

    relay.target = report
    try:
        yield
    finally:
        relay.target = None
        if bar is not None:
            bar.__exit__(None, None, None)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def failure_reason(execution: Execution) -> str:
    """One line: what failed and why."""
    error = (execution.error or execution.status.value).replace("\n", " ")
    return f"{execution.name} {execution.status.value}: {error} (execution {execution.id})"


@click.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is parsed as JSON when it can be, else taken as a string.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
@run_cli_errors
def run(name: str, params: tuple[str, ...], as_json: bool) -> None:
    """Run a pipeline or workflow NAME and wait for it to finish."""
    parsed = parse_params(params)
    runtime = open_runtime()
    with ends_interrupted_runs(runtime), ingest_progress(runtime):
        submitted = runtime.dispatcher.submit(name, parsed, trigger_source=TriggerSource.CLI)
        log.debug(
            "submitted %s as execution %s with params %s", name, submitted.id, submitted.params
        )
        execution = runtime.dispatcher.wait(submitted.id)
    log_steps(execution)
    cli_state().extras[LAST_EXECUTION] = execution  # for commands that invoke `run`
    if as_json:
        click.echo(json.dumps(execution.to_dict(), indent=2, default=str))
    else:
        for line in summary_lines(execution):
            click.echo(line)
    if execution.status is not ExecutionStatus.COMPLETED:
        click.echo(f"error: {failure_reason(execution)}", err=True)
        raise click.exceptions.Exit(1)
