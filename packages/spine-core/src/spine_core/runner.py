"""Runs one persisted execution through the engine and records its outcome in the ledger.

Every backend calls this, so a run behaves the same whether it happened inline, in a worker
thread or in a Celery task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spine_core.capabilities import Capability
from spine_core.engine import RunObserver, WorkflowEngine
from spine_core.errors import ErrorCategory, IllegalTransition
from spine_core.execution import Execution
from spine_core.ports import LedgerStore
from spine_core.registry import Registry
from spine_core.resources import Resources
from spine_core.status import ExecutionStatus

log = logging.getLogger(__name__)

ObserverFactory = Callable[[Execution], Sequence[RunObserver]]


@dataclass
class ExecutionRunner:
    """Turns an execution id into a finished ledger row."""

    store: LedgerStore
    registry: Registry
    capabilities: frozenset[Capability]
    tier: str
    resources: Resources = field(default_factory=Resources)
    observers: ObserverFactory = lambda execution: ()

    def run(self, execution_id: str, *, claimed: Execution | None = None) -> Execution:
        """Run to a final status. `claimed` is the row a worker already moved to running."""
        execution = claimed
        if execution is None:
            try:
                execution = self.store.transition(execution_id, ExecutionStatus.RUNNING)
            except IllegalTransition:
                # Cancelled before it started, or already taken by someone else: not ours.
                current = self.store.get_execution(execution_id)
                log.warning(
                    "execution %s is %s; not running it", execution_id, current.status.value
                )
                return current
        try:
            workflow = self.registry.resolve(execution.name)
            engine = WorkflowEngine(
                registry=self.registry,
                capabilities=self.capabilities,
                tier=self.tier,
                resources=self.resources,
                observers=tuple(self.observers(execution)),
                cancel_requested=self._cancel_probe(execution_id),
            )
            result = engine.run(workflow, execution.params, run_id=execution.id)
        except Exception as exc:
            log.exception("execution %s could not run", execution_id)
            return self._finish_failed(
                execution_id, f"{type(exc).__name__}: {exc}", ErrorCategory.INTERNAL
            )
        if result.succeeded:
            return self.store.transition(
                execution_id, ExecutionStatus.COMPLETED, result=result.to_dict()
            )
        if result.category is ErrorCategory.CANCELLED:
            try:
                return self.store.transition(
                    execution_id,
                    ExecutionStatus.CANCELLED,
                    error=result.error,
                    error_category=result.category.value,
                    result=result.to_dict(),
                )
            except IllegalTransition:
                pass  # nobody asked to cancel: a step that gave up on its own has failed
        return self._finish_failed(
            execution_id,
            result.error or "failed",
            result.category or ErrorCategory.USER_CODE,
            result.to_dict(),
        )

    def _cancel_probe(self, execution_id: str) -> Callable[[], bool]:
        """Ask the ledger between steps, but only where a running execution can be cancelled."""
        if Capability.CANCEL not in self.capabilities:
            return lambda: False
        return lambda: self.store.get_execution(execution_id).status is ExecutionStatus.CANCELLING

    def _finish_failed(
        self, execution_id: str, error: str, category: ErrorCategory, result: dict | None = None
    ) -> Execution:
        try:
            return self.store.transition(
                execution_id,
                ExecutionStatus.FAILED,
                error=error,
                error_category=category.value,
                result=result,
            )
        except IllegalTransition:
            return self.store.get_execution(execution_id)
