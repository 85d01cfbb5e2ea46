"""Where a log record comes from: the execution, step, attempt and worker being advanced.

Context variables, set by the runner as it advances an execution and runs its steps, so that
every record logged meanwhile on that thread (by the engine, a store, a user's step) can carry
them without being passed them. `LogContextFilter` copies them onto each record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("execution_id", "step", "attempt", "worker")
"""What every record carries (None outside an execution)."""

_VARS: dict[str, ContextVar[Any]] = {
    name: ContextVar(f"spine_{name}", default=None) for name in FIELDS
}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Set the fields (the rest to None) for the block; restored afterwards.

    Restored to what they were before the block, even if `set_log_field` changed them inside.
    """
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    tokens = [(var, var.set(fields.get(name))) for name, var in _VARS.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_log_field(name: str, value: Any) -> None:
    """Change one field inside a `log_context` block (the step that starts, its attempt)."""
    _VARS[name].set(value)


def current_log_context() -> dict[str, Any]:
    """The fields as they are now."""
    return {name: var.get() for name, var in _VARS.items()}


class LogContextFilter(logging.Filter):
    """Adds the fields to every record a handler sees (a field set on the record wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always passes the record on, with the fields set."""
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True
