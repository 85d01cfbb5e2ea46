"""Run state and checkpoints: what survives a worker's death, as plain JSON data.

The run state is the whole of an execution's progress: which workflow and version it started
with, the cursor (index of the next top-level step), the outputs so far and each finished step's
summary. A checkpoint is the state after one step plus what that step's end writes with it, so
a store can commit them in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spine_core.errors import SpineError
from spine_core.events import EventType
from spine_core.status import ExecutionStatus


class CheckpointRejected(SpineError):
    """The execution is no longer this worker's to advance (lease lost, cancelled, finished)."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution {execution_id} is {status}; checkpoint not written")
        self.execution_id = execution_id
        self.status = status


@dataclass(frozen=True)
class RunState:
    """One execution's durable progress."""

    workflow: str
    version: int
    cursor: int = 0
    outputs: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Mapping[str, Any], ...] = ()
    attempt: int = 1
    """The attempt number of the step at `cursor` (retries and resumes count up)."""
    fanout: Mapping[str, Any] | None = None
    """While the step at `cursor` waits for its child executions: what it waits for (the
    `FanOut` of `spine_core.durable.children`, as data, which stores also read)."""

    def to_json(self) -> str:
        """The form every store keeps; refuses values JSON cannot carry."""
        data = {
            "workflow": self.workflow,
            "version": self.version,
            "cursor": self.cursor,
            "outputs": self.outputs,
            "steps": list(self.steps),
            "attempt": self.attempt,
        }
        if self.fanout is not None:
            data["fanout"] = dict(self.fanout)
        return json.dumps(data, allow_nan=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> RunState:
        """Rebuild what `to_json` wrote (a store may hand back the parsed mapping)."""
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(
            workflow=data["workflow"],
            version=int(data["version"]),
            cursor=int(data["cursor"]),
            outputs=dict(data["outputs"]),
            steps=tuple(data["steps"]),
            attempt=int(data.get("attempt", 1)),
            fanout=data.get("fanout"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `to_json` writes it."""
        return json.loads(self.to_json())


@dataclass(frozen=True)
class StatusMove:
    """The status change a checkpoint ends with, when its step ends the run."""

    to: ExecutionStatus
    error: str | None = None
    error_category: str | None = None
    result: Mapping[str, Any] | None = None
    due_at: datetime | None = None
    """With `to=queued`: not claimable before this moment (a retry's backoff, a wait)."""
    payload: Mapping[str, Any] | None = None
    """Extra payload of the status event (why it was queued again)."""


@dataclass(frozen=True)
class Checkpoint:
    """The state after a step, the step's event, and the run's end if the step ended it."""

    state: RunState
    event_type: EventType
    event_payload: Mapping[str, Any]
    worker_id: str | None = None
    """Only the worker holding the execution may write; None for the inline backend."""
    finish: StatusMove | None = None
