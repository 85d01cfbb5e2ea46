"""The immutable context passed from step to step.

Values are frozen on the way in (lists become tuples, dicts read-only views) and must be JSON
values, so that a checkpoint written mid-run reloads into an equal context.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """A deep read-only copy of a JSON value; rejects anything JSON cannot carry."""
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"context keys must be strings, got {key!r}")
            frozen[key] = freeze(item)
        return MappingProxyType(frozen)
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError("NaN and infinity have no JSON form; store them as strings")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"workflow context values must be JSON values, got {type(value).__name__}; "
        "convert it (e.g. Decimal to str) before returning it"
    )


def thaw(value: Any) -> Any:
    """Plain, mutable JSON data from a frozen value."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class WorkflowContext:
    """What a step sees: the run's params and the outputs of the steps before it."""

    workflow: str
    run_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(self.params))
        object.__setattr__(self, "outputs", freeze(self.outputs))

    def with_output(self, step: str, value: Any) -> WorkflowContext:
        """A new context that also holds `step`'s output; this one is unchanged."""
        return WorkflowContext(
            self.workflow, self.run_id, self.params, {**self.outputs, step: freeze(value)}
        )

    def with_params(self, **extra: Any) -> WorkflowContext:
        """A new context whose params include `extra` (used for map items)."""
        return WorkflowContext(self.workflow, self.run_id, {**self.params, **extra}, self.outputs)

    def output(self, step: str, default: Any = None) -> Any:
        """The output of an earlier step, or `default` if it did not run."""
        return self.outputs.get(step, default)

    def to_json(self) -> str:
        """Serialize for a checkpoint."""
        return json.dumps(
            {
                "workflow": self.workflow,
                "run_id": self.run_id,
                "params": thaw(self.params),
                "outputs": thaw(self.outputs),
            },
            allow_nan=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> WorkflowContext:
        """Rebuild a context written by `to_json`."""
        data = json.loads(text)
        return cls(data["workflow"], data["run_id"], data["params"], data["outputs"])
