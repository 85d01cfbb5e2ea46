"""The one entry point for running work: persist first, then hand to a backend."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spine_core.backend import Backend
from spine_core.capabilities import INTRODUCED_BY, Capability
from spine_core.engine import named_sub_workflows, require_capabilities
from spine_core.errors import (
    ErrorCategory,
    IllegalTransition,
    InvalidParams,
    MissingCapability,
    SpineError,
)
from spine_core.events import ExecutionEvent
from spine_core.execution import Execution, ExecutionFilter, Lane, NewExecution, TriggerSource
from spine_core.notifications import FALLBACK_POLL_SECONDS, LedgerNotifications
from spine_core.ports import FanOutStore, LedgerStore
from spine_core.registry import Registry
from spine_core.status import ExecutionStatus, is_terminal

MAX_LOGICAL_KEY_LENGTH = 200
"""The longest logical_key accepted; longer ones are refused before anything is written."""

RETRYABLE = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.DEAD_LETTERED, ExecutionStatus.CANCELLED}
)


@dataclass
class Dispatcher:
    """Validates, persists and routes executions; the same class on every tier."""

    store: LedgerStore
    backend: Backend
    registry: Registry
    capabilities: frozenset[Capability]
    tier: str
    notifications: LedgerNotifications | None = None
    """When the store announces finished executions, `wait` blocks on them instead of polling."""
    fanout: FanOutStore | None = None
    """Where children of map and sub-workflow steps are kept, so a cancel reaches them."""

    def submit(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        lane: Lane = Lane.NORMAL,
        trigger_source: TriggerSource = TriggerSource.MANUAL,
        logical_key: str | None = None,
        parent_execution_id: str | None = None,
        retry_count: int = 0,
    ) -> Execution:
        """Check everything that can be checked up front, persist, then hand to the backend.

        Unknown names, bad params and missing capabilities fail here, before any row exists.
        Returns the row as the backend left it, without reading it again.
        """
        workflow = self.registry.resolve(name)
        require_capabilities(workflow, self.capabilities, self.tier, self.registry)
        self.registry.check_references([workflow, *named_sub_workflows(workflow, self.registry)])
        validated = self.registry.validate_params(name, params)
        if logical_key is not None and Capability.CONCURRENCY_KEYS not in self.capabilities:
            raise MissingCapability(
                "logical_key concurrency", INTRODUCED_BY[Capability.CONCURRENCY_KEYS], self.tier
            )
        if logical_key is not None and not 1 <= len(logical_key) <= MAX_LOGICAL_KEY_LENGTH:
            message = f"must be 1 to {MAX_LOGICAL_KEY_LENGTH} characters, got {len(logical_key)}"
            raise InvalidParams(name, [{"field": "logical_key", "message": message}])
        execution = self.store.create_execution(
            NewExecution(
                name=name,
                params=validated,
                lane=lane,
                trigger_source=trigger_source,
                logical_key=logical_key,
                parent_execution_id=parent_execution_id,
                retry_count=retry_count,
                backend=self.backend.name,
                status=self.backend.creates_as,
            )
        )
        try:
            after = self.backend.submit(execution.id)
        except Exception as exc:
            self._fail_unsubmitted(execution.id, exc)
            raise
        return after if after is not None else execution

    def get(self, execution_id: str) -> Execution:
        """One execution."""
        return self.store.get_execution(execution_id)

    def list(self, flt: ExecutionFilter | None = None) -> list[Execution]:
        """Executions, newest first."""
        return self.store.list_executions(flt or ExecutionFilter())

    def wait(
        self, execution_id: str, *, timeout: float | None = None, poll: float = 0.05
    ) -> Execution:
        """Block until the execution reaches a terminal status (or `timeout` seconds pass).

        With `notifications`, it reads the ledger when the execution is announced finished, or
        every `FALLBACK_POLL_SECONDS` in case an announcement was lost; otherwise every `poll`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            execution = self.store.get_execution(execution_id)
            if is_terminal(execution.status):
                return execution
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return execution
            if self.notifications is None:
                time.sleep(poll if left is None else min(poll, left))
            else:
                pause = FALLBACK_POLL_SECONDS if left is None else min(FALLBACK_POLL_SECONDS, left)
                self.notifications.wait_for(execution_id, pause)

    def events(self, execution_id: str) -> list[ExecutionEvent]:
        """An execution's events in order."""
        self.store.get_execution(execution_id)
        return self.store.list_events(execution_id)

    def cancel(self, execution_id: str) -> Execution:
        """Cancel at once if not started; ask a running one to stop between steps.

        A map's or sub-workflow's children go with their parent, and a child cancelled on its
        own tells its waiting parent, as a child that ended any other way would.
        """
        execution = self.store.get_execution(execution_id)
        if execution.status in (ExecutionStatus.PENDING, ExecutionStatus.QUEUED):
            cancelled = self.store.transition(execution_id, ExecutionStatus.CANCELLED)
            self._cancel_family(cancelled)
            return cancelled
        if execution.status is ExecutionStatus.RUNNING:
            if Capability.CANCEL not in self.capabilities:
                raise MissingCapability(
                    "cancelling a running execution", INTRODUCED_BY[Capability.CANCEL], self.tier
                )
            execution = self.store.transition(execution_id, ExecutionStatus.CANCELLING)
            self.backend.cancel(execution_id)
            self._cancel_family(execution)
            return execution
        if execution.status is ExecutionStatus.CANCELLING:
            return execution
        raise IllegalTransition(execution.status.value, ExecutionStatus.CANCELLED.value)

    def _cancel_family(self, execution: Execution) -> None:
        if self.fanout is None:
            return
        if execution.status is ExecutionStatus.CANCELLED and execution.parent_execution_id:
            news = self.fanout.child_finished(execution.id)
            for queued in (*news.released, *([news.woken] if news.woken else [])):
                self.backend.submit(queued.id)
        parents = [execution.id]
        while parents:
            for child in self.fanout.cancel_children(parents.pop()):
                if child.status is ExecutionStatus.CANCELLING:
                    self.backend.cancel(child.id)
                parents.append(child.id)

    def _fail_unsubmitted(self, execution_id: str, exc: Exception) -> None:
        """A backend that refused the work must not leave the row pending forever."""
        execution = self.store.get_execution(execution_id)
        if execution.status in (ExecutionStatus.PENDING, ExecutionStatus.QUEUED):
            self.store.transition(
                execution_id,
                ExecutionStatus.FAILED,
                error=f"backend {self.backend.name!r} refused the execution: {exc}",
                error_category=ErrorCategory.INFRASTRUCTURE.value,
            )

    def resume(self, execution_id: str) -> Execution:
        """Continue a failed execution from its failed step: the same execution, a new attempt.

        The row moves failed -> queued (its `queued` event says `resumed`) and goes back to the
        backend; the runner loads its checkpoint, so completed steps do not run again.
        """
        if Capability.CHECKPOINTS not in self.capabilities:
            raise MissingCapability(
                "resuming an execution", INTRODUCED_BY[Capability.CHECKPOINTS], self.tier
            )
        execution = self.store.get_execution(execution_id)
        if execution.status is not ExecutionStatus.FAILED:
            raise SpineError(
                f"execution {execution_id} is {execution.status.value}; only a failed "
                "execution can be resumed"
            )
        self.registry.resolve(execution.name)
        queued = self.store.transition(
            execution_id, ExecutionStatus.QUEUED, payload={"reason": "resumed"}
        )
        after = self.backend.submit(execution_id)
        return after if after is not None else queued

    def retry(self, execution_id: str) -> Execution:
        """A new execution of the same work, linked to the one that did not succeed."""
        parent = self.store.get_execution(execution_id)
        if parent.status not in RETRYABLE:
            raise SpineError(
                f"execution {execution_id} is {parent.status.value}; only failed, dead-lettered "
                "or cancelled executions can be retried"
            )
        return self.submit(
            parent.name,
            parent.params,
            lane=parent.lane,
            trigger_source=TriggerSource.RETRY,
            logical_key=parent.logical_key,
            parent_execution_id=parent.id,
            retry_count=parent.retry_count + 1,
        )
