"""`spine shell`: a Python REPL with the runtime bound."""

from __future__ import annotations

import code
import sys
from typing import Any

import click

from spine_basic.cli.context import open_runtime, run_cli_errors


def shell_namespace() -> dict[str, Any]:
    """What the shell binds: runtime, dispatcher, store, otc, registry."""
    from spine_otc.store import OtcStore

    runtime = open_runtime()
    return {
        "runtime": runtime,
        "dispatcher": runtime.dispatcher,
        "store": runtime.store,
        "otc": runtime.resources.get(OtcStore) if OtcStore in runtime.resources else None,
        "registry": runtime.registry,
    }


@click.command("shell")
@run_cli_errors
def shell() -> None:
    """A Python shell with runtime, dispatcher, store, otc and registry bound.

    Reads from a pipe too: `echo 'print(store)' | spine shell`.
    """
    namespace = shell_namespace()
    interactive = sys.stdin.isatty()
    if interactive:
        tier = namespace["runtime"].tier
        banner = (
            f"Market Spine shell (tier {tier.name}). Bound: runtime, dispatcher, store, otc, "
            "registry.\ne.g. dispatcher.list()[:5], otc.query_metrics(symbol='AAPL')"
        )
        code.interact(banner=banner, local=namespace, exitmsg="")
        return
    # Piped input: no banner and no prompts, so the output is just what the code prints.
    saved = getattr(sys, "ps1", None), getattr(sys, "ps2", None)
    sys.ps1, sys.ps2 = "", ""
    try:
        console = code.InteractiveConsole(locals=namespace)
        console.raw_input = _read_line  # type: ignore[method-assign]
        console.interact(banner="", exitmsg="")
    finally:
        for name, value in zip(("ps1", "ps2"), saved, strict=True):
            if value is None:
                if hasattr(sys, name):
                    delattr(sys, name)
            else:
                setattr(sys, name, value)


def _read_line(prompt: str = "") -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")
