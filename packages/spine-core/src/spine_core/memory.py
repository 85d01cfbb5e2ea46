"""An in-memory ledger: the reference implementation the conformance suites run against.

Useful for tests and for trying the engine without a database; it keeps nothing on exit.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from spine_core.dead_letters import DeadLetter, DeadLetterClosed, DeadLetterNotFound
from spine_core.durable.children import ChildNews, ChildWait, FanOut, wake_decision
from spine_core.durable.state import Checkpoint, CheckpointRejected, RunState
from spine_core.errors import ExecutionNotFound
from spine_core.events import STATUS_EVENTS, EventType, ExecutionEvent
from spine_core.execution import (
    Execution,
    ExecutionFilter,
    Lane,
    NewExecution,
    new_execution_id,
    utcnow,
)
from spine_core.notifications import NotificationHub
from spine_core.ports import HistoryEntry, RunFinished, RunStarted, StepRunRecord
from spine_core.status import ExecutionStatus, check_transition, is_terminal

_ADVANCING = (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)


class InMemoryLedgerStore:
    """Every core store port (ledger, history, checkpoints, fan-out, dead letters) in dicts."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._executions: dict[str, Execution] = {}
        self._events: dict[str, list[ExecutionEvent]] = {}
        self._runs: dict[str, list[StepRunRecord]] = {}
        self.notifications = NotificationHub()
        """Announces finished executions and new work to waiters in this process."""
        self._states: dict[str, str] = {}
        self._letters: dict[str, DeadLetter] = {}
        self._retrying = threading.Lock()
        """Held across a dead letter's retry, so that its submit (which takes `_lock` from
        other threads too, e.g. inline runs) is never nested inside the store lock."""

    def create_execution(self, new: NewExecution) -> Execution:
        """Insert with its `created` event."""
        now = utcnow()
        execution = Execution(
            id=new.id,
            name=new.name,
            params=copy.deepcopy(dict(new.params)),
            status=new.status,
            lane=new.lane,
            trigger_source=new.trigger_source,
            logical_key=new.logical_key,
            parent_execution_id=new.parent_execution_id,
            retry_count=new.retry_count,
            backend=new.backend,
            created_at=now,
            updated_at=now,
        )
        with self._lock:
            if new.id in self._executions:
                raise ValueError(f"execution {new.id} already exists")
            self._executions[new.id] = execution
            self._events[new.id] = []
            self._append(new.id, EventType.CREATED, {"name": new.name, "attempt": 1}, None, now)
            if new.status is ExecutionStatus.QUEUED:
                self._append(new.id, EventType.QUEUED, {"attempt": 1}, None, now)
        self._announce(execution)
        return execution

    def _announce(self, execution: Execution) -> None:
        if is_terminal(execution.status):
            self.notifications.finished(execution.id)
        elif execution.status is ExecutionStatus.QUEUED:
            self.notifications.work_available()

    def get_execution(self, execution_id: str) -> Execution:
        """The execution or `ExecutionNotFound`."""
        with self._lock:
            try:
                return self._executions[execution_id]
            except KeyError:
                raise ExecutionNotFound(execution_id) from None

    def list_executions(self, flt: ExecutionFilter) -> list[Execution]:
        """Newest first."""
        with self._lock:
            rows = sorted(self._executions.values(), key=lambda e: e.id, reverse=True)
        out = []
        for e in rows:
            if flt.status and e.status != flt.status:
                continue
            if flt.name and e.name != flt.name:
                continue
            if flt.created_since and e.created_at < flt.created_since:
                continue
            if flt.logical_key and e.logical_key != flt.logical_key:
                continue
            if flt.parent_execution_id and e.parent_execution_id != flt.parent_execution_id:
                continue
            if flt.before_id and e.id >= flt.before_id:
                continue
            out.append(e)
            if len(out) >= flt.limit:
                break
        return out

    def transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        *,
        error: str | None = None,
        error_category: str | None = None,
        result: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> Execution:
        """Check, update and append the event under one lock."""
        to = ExecutionStatus(to)
        with self._lock:
            current = self.get_execution(execution_id)
            check_transition(current.status, to)
            now = utcnow()
            queued = to is ExecutionStatus.QUEUED
            updated = replace(
                current,
                status=ExecutionStatus(to),
                updated_at=now,
                started_at=now if to is ExecutionStatus.RUNNING else current.started_at,
                finished_at=now if is_terminal(to) else current.finished_at,
                # Queued again (resumed, retried, handed back): the old error no longer holds.
                error=error if error is not None else (None if queued else current.error),
                error_category=error_category
                if error_category is not None
                else (None if queued else current.error_category),
                result=copy.deepcopy(dict(result)) if result is not None else current.result,
                worker_id=worker_id if to is ExecutionStatus.RUNNING else current.worker_id,
                due_at=None if to is ExecutionStatus.RUNNING else current.due_at,
            )
            self._executions[execution_id] = updated
            event_payload = dict(payload or {})
            if error:
                event_payload.setdefault("error", error)
            event_payload.setdefault("attempt", self._attempt(execution_id))
            self._append(execution_id, STATUS_EVENTS[ExecutionStatus(to)], event_payload, None, now)
        self._announce(updated)
        return updated

    def _attempt(self, execution_id: str) -> int:
        """The attempt of the step at the cursor, as last checkpointed (1 before any)."""
        text = self._states.get(execution_id)
        return 1 if text is None else RunState.from_json(text).attempt

    def append_event(
        self,
        execution_id: str,
        event_type: EventType,
        payload: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> ExecutionEvent:
        """Append, or return the event already written under `dedupe_key`."""
        with self._lock:
            self.get_execution(execution_id)
            if dedupe_key is not None:
                for event in self._events[execution_id]:
                    if event.dedupe_key == dedupe_key:
                        return event
            return self._append(execution_id, event_type, dict(payload or {}), dedupe_key, utcnow())

    def _append(
        self, execution_id: str, event_type: EventType, payload: dict, dedupe_key: str | None, at
    ) -> ExecutionEvent:
        events = self._events[execution_id]
        event = ExecutionEvent(
            execution_id, len(events) + 1, EventType(event_type), at, payload, dedupe_key
        )
        events.append(event)
        return event

    def list_events(self, execution_id: str) -> list[ExecutionEvent]:
        """In `seq` order."""
        with self._lock:
            self.get_execution(execution_id)
            return list(self._events[execution_id])

    def claim_next(
        self, worker_id: str, *, lanes: tuple[Lane, ...] | None = None
    ) -> Execution | None:
        """Oldest queued first, among those that are due."""
        with self._lock:
            now = utcnow()
            queued = sorted(
                (
                    e
                    for e in self._executions.values()
                    if e.status is ExecutionStatus.QUEUED
                    and (lanes is None or e.lane in lanes)
                    and (e.due_at is None or e.due_at <= now)
                ),
                key=lambda e: e.id,
            )
            if not queued:
                return None
            return self.transition(queued[0].id, ExecutionStatus.RUNNING, worker_id=worker_id)

    def load_run_state(self, execution_id: str) -> RunState | None:
        """The last checkpointed state, parsed from the JSON it was kept as."""
        with self._lock:
            self.get_execution(execution_id)
            text = self._states.get(execution_id)
        return None if text is None else RunState.from_json(text)

    def save_checkpoint(self, execution_id: str, checkpoint: Checkpoint) -> Execution:
        """State, event and status move under one lock; nothing if the holder is not ours."""
        text = checkpoint.state.to_json()
        with self._lock:
            row = self.get_execution(execution_id)
            if row.status not in _ADVANCING or row.worker_id != checkpoint.worker_id:
                raise CheckpointRejected(execution_id, row.status.value)
            move = checkpoint.finish
            if move is not None:
                check_transition(row.status, move.to)
            self._states[execution_id] = text
            self._append(
                execution_id,
                checkpoint.event_type,
                dict(checkpoint.event_payload),
                None,
                utcnow(),
            )
            if move is None:
                return row
            moved = self.transition(
                execution_id,
                move.to,
                error=move.error,
                error_category=move.error_category,
                result=move.result,
                payload=move.payload,
            )
            if move.due_at is not None:
                moved = self._executions[execution_id] = replace(moved, due_at=move.due_at)
            return moved

    def await_children(self, parent_id: str, wait: ChildWait) -> tuple[Execution, list[Execution]]:
        """State, children, the parent's move to queued and the first releases, under one lock."""
        with self._lock:
            row = self.get_execution(parent_id)
            if row.status not in _ADVANCING or row.worker_id != wait.worker_id:
                raise CheckpointRejected(parent_id, row.status.value)
            if row.status is ExecutionStatus.CANCELLING:
                return row, []
            assert wait.state.fanout is not None
            self._states[parent_id] = wait.state.to_json()
            for new in wait.children:
                self.create_execution(new)
            fanout = FanOut.from_dict(wait.state.fanout)
            round_ = fanout.of_this_round(self.list_children(parent_id))
            wake, _ = wake_decision(Counter(c.status.value for c in round_), fanout)
            woken_meanwhile = row.due_at is not None
            moved = self.transition(parent_id, ExecutionStatus.QUEUED, payload=wait.payload)
            due = utcnow() if wake or woken_meanwhile else wait.recheck_at
            moved = self._executions[parent_id] = replace(moved, due_at=due)
            return moved, self._release(parent_id, wait.release)

    def child_finished(self, child_id: str) -> ChildNews:
        """Decide for the parent under the store's lock, which every sibling shares."""
        with self._lock:
            child = self.get_execution(child_id)
            parent_id = child.parent_execution_id
            if parent_id is None or parent_id not in self._executions:
                return ChildNews()
            parent = self._executions[parent_id]
            state = self.load_run_state(parent_id)
            waiting = parent.status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
            if not waiting or state is None or state.fanout is None:
                return ChildNews()
            fanout = FanOut.from_dict(state.fanout)
            round_ = fanout.of_this_round(self.list_children(parent_id))
            wake, release = wake_decision(Counter(c.status.value for c in round_), fanout)
            released = self._release(parent_id, release)
            if not wake:
                return ChildNews(None, released)
            woken = self._executions[parent_id] = replace(parent, due_at=utcnow())
        self.notifications.work_available()
        return ChildNews(woken if woken.status is ExecutionStatus.QUEUED else None, released)

    def _release(self, parent_id: str, count: int) -> list[Execution]:
        pending = [c for c in self.list_children(parent_id) if c.status is ExecutionStatus.PENDING]
        return [self.transition(c.id, ExecutionStatus.QUEUED) for c in pending[:count]]

    def list_children(self, parent_id: str) -> list[Execution]:
        """Oldest first: the order the parent created them in."""
        with self._lock:
            return sorted(
                (e for e in self._executions.values() if e.parent_execution_id == parent_id),
                key=lambda e: e.id,
            )

    def cancel_children(self, parent_id: str) -> list[Execution]:
        """Each active child moved as `Dispatcher.cancel` would move it."""
        moves = {
            ExecutionStatus.PENDING: ExecutionStatus.CANCELLED,
            ExecutionStatus.QUEUED: ExecutionStatus.CANCELLED,
            ExecutionStatus.RUNNING: ExecutionStatus.CANCELLING,
        }
        with self._lock:
            return [
                self.transition(c.id, moves[c.status], payload={"reason": "parent stopped"})
                for c in self.list_children(parent_id)
                if c.status in moves
            ]

    def count_by_status(self) -> dict[str, int]:
        """Counts per status."""
        counts: dict[str, int] = {}
        with self._lock:
            for e in self._executions.values():
                counts[e.status.value] = counts.get(e.status.value, 0) + 1
        return counts

    def schema_version(self) -> int:
        """Nothing to migrate."""
        return 0

    def table_counts(self) -> dict[str, int]:
        """The same names the SQL stores use."""
        with self._lock:
            return {
                "executions": len(self._executions),
                "execution_events": sum(len(v) for v in self._events.values()),
                "workflow_runs": sum(len(v) for v in self._runs.values()),
            }

    def record(self, entries: Sequence[HistoryEntry]) -> None:
        """Apply the entries in order."""
        with self._lock:
            for entry in entries:
                if isinstance(entry, RunStarted):
                    self._runs[entry.run_id] = [
                        StepRunRecord(
                            entry.run_id,
                            entry.execution_id,
                            entry.workflow,
                            entry.version,
                            None,
                            None,
                            "running",
                            entry.started_at,
                            detail={"params": dict(entry.params)},
                        )
                    ]
                elif isinstance(entry, RunFinished):
                    head = self._runs[entry.run_id][0]
                    duration = (entry.finished_at - head.started_at).total_seconds() * 1000
                    self._runs[entry.run_id][0] = replace(
                        head,
                        status=entry.status,
                        error=entry.error,
                        finished_at=entry.finished_at,
                        duration_ms=duration,
                    )
                else:
                    self._runs[entry.run_id].append(entry)

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[StepRunRecord]:
        """Run rows, newest first."""
        with self._lock:
            heads = [
                rows[0] for rows in self._runs.values() if workflow in (None, rows[0].workflow)
            ]
        return sorted(heads, key=lambda r: r.started_at, reverse=True)[:limit]

    def get_run(self, run_id: str) -> list[StepRunRecord]:
        """Run row then step rows."""
        with self._lock:
            return list(self._runs.get(run_id, []))

    # -- DeadLetterStore ---------------------------------------------------------------------

    def dead_letter(self, execution_id: str, *, reason: str, attempts: int) -> DeadLetter:
        """The move and the record under one lock."""
        with self._lock:
            moved = self.transition(
                execution_id,
                ExecutionStatus.DEAD_LETTERED,
                payload={"reason": reason, "attempt": attempts, "attempts": attempts},
            )
            letter = DeadLetter(
                id=new_execution_id(),
                execution_id=execution_id,
                reason=reason,
                error=moved.error,
                error_category=moved.error_category,
                attempts=attempts,
                created_at=moved.updated_at,
            )
            self._letters[letter.id] = letter
            return letter

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """The record or `DeadLetterNotFound`."""
        with self._lock:
            try:
                return self._letters[dead_letter_id]
            except KeyError:
                raise DeadLetterNotFound(dead_letter_id) from None

    def list_dead_letters(
        self, *, before_id: str | None = None, limit: int = 50, open_only: bool = False
    ) -> list[DeadLetter]:
        """Newest first."""
        with self._lock:
            rows = sorted(self._letters.values(), key=lambda d: d.id, reverse=True)
        picked = (
            d
            for d in rows
            if (before_id is None or d.id < before_id) and (d.is_open or not open_only)
        )
        return [d for _, d in zip(range(max(0, limit)), picked, strict=False)]

    def retry_with(
        self, dead_letter_id: str, submit: Callable[[DeadLetter], Execution]
    ) -> Execution:
        """Under the retry lock: check it is open, submit, close it as retried."""
        with self._retrying:
            letter = self.get_dead_letter(dead_letter_id)
            if not letter.is_open:
                raise DeadLetterClosed(letter)
            execution = submit(letter)
            self._close(dead_letter_id, retried_as=execution.id)
            return execution

    def discard(self, dead_letter_id: str) -> DeadLetter:
        """Close as discarded, if open (never in the middle of its retry)."""
        with self._retrying:
            return self._close(dead_letter_id, discarded_at=utcnow())

    def _close(self, dead_letter_id: str, **change: Any) -> DeadLetter:
        with self._lock:
            letter = self.get_dead_letter(dead_letter_id)
            if not letter.is_open:
                raise DeadLetterClosed(letter)
            closed = self._letters[dead_letter_id] = replace(letter, **change)
            return closed

    def count_dead_letters(self, *, open_only: bool = True) -> int:
        """Open ones, or all."""
        with self._lock:
            return sum(1 for d in self._letters.values() if d.is_open or not open_only)

    def close(self) -> None:
        """Nothing to release."""
