"""Run state kept in the process, for a ledger that does not persist it (the basic tier).

The basic tier runs each execution inline, in the process that submitted it: if that process
dies, so does the run, and `spine run` starts a new one. Keeping the state here lets basic run
the one engine without a schema change; its step events and status moves still go to the
ledger.
"""

from __future__ import annotations

import threading

from spine_core.durable.state import Checkpoint, CheckpointRejected, RunState
from spine_core.execution import Execution
from spine_core.ports import LedgerStore
from spine_core.status import ExecutionStatus

_ADVANCING = (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)


class LocalCheckpointStore:
    """`CheckpointStore` over any `LedgerStore`, with the run state in a dict."""

    def __init__(self, ledger: LedgerStore) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._states: dict[str, RunState] = {}

    def load_run_state(self, execution_id: str) -> RunState | None:
        """The state this process last saved."""
        with self._lock:
            return self._states.get(execution_id)

    def save_checkpoint(self, execution_id: str, checkpoint: Checkpoint) -> Execution:
        """Event, then the status move; the state is forgotten once the run has ended."""
        row = self.ledger.get_execution(execution_id)
        if row.status not in _ADVANCING or row.worker_id != checkpoint.worker_id:
            raise CheckpointRejected(execution_id, row.status.value)
        checkpoint.state.to_json()  # refuse what a persisting store would refuse
        self.ledger.append_event(execution_id, checkpoint.event_type, checkpoint.event_payload)
        with self._lock:
            if checkpoint.finish is None:
                self._states[execution_id] = checkpoint.state
                return row
            self._states.pop(execution_id, None)
        move = checkpoint.finish
        return self.ledger.transition(
            execution_id,
            move.to,
            error=move.error,
            error_category=move.error_category,
            result=move.result,
            payload=move.payload,
        )
