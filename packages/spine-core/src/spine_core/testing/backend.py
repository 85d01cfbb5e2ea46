"""The conformance suite every `Backend` runs (inline, thread pool, Celery, plugins).

Subclass `BackendConformance` and provide two fixtures: `store` (a fresh, empty `LedgerStore`)
and `make_backend`, a factory that builds an unstarted backend from an `ExecutionRunner`::

    class TestLocalBackend(BackendConformance):
        capabilities = capabilities_up_to("market-spine-intermediate")

        @pytest.fixture
        def store(self):
            return InMemoryLedgerStore()

        @pytest.fixture
        def make_backend(self):
            return lambda runner: LocalBackend(runner, workers=4)

The runner carries the store and the registry (`runner.store`, `runner.registry`). The suite
registers its pipelines (`conformance.*`) in the `registry` fixture, a fresh `Registry` unless
overridden; a backend whose workers live in another process must call
`register_conformance_pipelines` on its own registry there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pydantic import BaseModel, ConfigDict

from spine_core.backend import Backend, BackendHealth
from spine_core.capabilities import Capability, capabilities_up_to
from spine_core.dispatcher import Dispatcher
from spine_core.errors import ErrorCategory, InvalidParams
from spine_core.events import EventType
from spine_core.execution import Execution
from spine_core.ports import LedgerStore
from spine_core.quality import QualityMetrics
from spine_core.registry import PipelineContext, Registry, pipeline
from spine_core.results import StepResult
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus, is_terminal

BackendFactory = Callable[[ExecutionRunner], Backend]
"""Builds an unstarted backend around the runner it must use."""


class EchoParams(BaseModel):
    """Params of `conformance.echo`."""

    model_config = ConfigDict(extra="forbid")
    value: str = "hello"


class FailParams(BaseModel):
    """Params of `conformance.fail` and `conformance.raise`."""

    model_config = ConfigDict(extra="forbid")
    message: str = "conformance failure"


@pipeline("conformance.echo", params=EchoParams)
def _echo(params: EchoParams, ctx: PipelineContext) -> StepResult:
    return StepResult.ok(
        {"value": params.value, "execution_id": ctx.execution_id},
        quality=QualityMetrics(record_count=1, valid_count=1),
    )


@pipeline("conformance.fail", params=FailParams)
def _fail(params: FailParams, ctx: PipelineContext) -> StepResult:
    return StepResult.fail(params.message, ErrorCategory.DATA_QUALITY)


@pipeline("conformance.raise", params=FailParams)
def _raise(params: FailParams, ctx: PipelineContext) -> StepResult:
    raise ValueError(params.message)


CONFORMANCE_PIPELINES = (_echo, _fail, _raise)
"""The pipelines the backend suite submits."""


def register_conformance_pipelines(registry: Registry) -> Registry:
    """Add the `conformance.*` pipelines to `registry` (once) and return it."""
    known = set(registry.pipelines())
    registry.add(*(p for p in CONFORMANCE_PIPELINES if p.name not in known))
    return registry


class BackendConformance:
    """The backend contract. Subclasses provide `store` and `make_backend` fixtures."""

    capabilities: frozenset[Capability] = capabilities_up_to("market-spine-basic")
    """What the runner and dispatcher may use; a tier sets its own."""
    tier_name = "conformance"
    """Reported in capability errors."""
    wait_timeout = 30.0
    """Seconds to wait for a submitted execution to finish."""

    @pytest.fixture
    def store(self) -> LedgerStore:
        """Override in the subclass: a fresh, empty store."""
        raise NotImplementedError("subclass BackendConformance and provide a `store` fixture")

    @pytest.fixture
    def make_backend(self) -> BackendFactory:
        """Override in the subclass: `runner -> unstarted backend`."""
        raise NotImplementedError("subclass BackendConformance and provide `make_backend`")

    @pytest.fixture
    def registry(self) -> Registry:
        """A registry without entry points; the suite adds its pipelines to it."""
        return Registry(load_entry_points=False)

    @pytest.fixture
    def runner(self, store: LedgerStore, registry: Registry) -> ExecutionRunner:
        """The runner the backend under test uses."""
        register_conformance_pipelines(registry)
        return ExecutionRunner(store, registry, self.capabilities, self.tier_name)

    @pytest.fixture
    def backend(self, make_backend: BackendFactory, runner: ExecutionRunner) -> Iterator[Backend]:
        """A started backend, stopped after the test."""
        backend = make_backend(runner)
        backend.start()
        try:
            yield backend
        finally:
            backend.stop()

    @pytest.fixture
    def dispatcher(
        self, store: LedgerStore, backend: Backend, runner: ExecutionRunner
    ) -> Dispatcher:
        """The dispatcher in front of the backend under test."""
        return Dispatcher(store, backend, runner.registry, self.capabilities, self.tier_name)

    def _finish(self, dispatcher: Dispatcher, execution: Execution) -> Execution:
        done = dispatcher.wait(execution.id, timeout=self.wait_timeout)
        assert is_terminal(done.status), (
            f"execution {execution.id} still {done.status.value} after {self.wait_timeout}s"
        )
        return done

    def test_backend_is_a_backend(self, backend: Backend) -> None:
        """It satisfies the `Backend` protocol and has a name."""
        assert isinstance(backend, Backend)
        assert isinstance(backend.name, str) and backend.name
        assert backend.creates_as in (ExecutionStatus.PENDING, ExecutionStatus.QUEUED)

    def test_executions_start_in_the_backends_creation_status(
        self, dispatcher: Dispatcher, backend: Backend
    ) -> None:
        """Created in `creates_as`: a queued one has `created` then `queued`, never pending."""
        submitted = dispatcher.submit("conformance.echo")
        self._finish(dispatcher, submitted)
        types = [e.event_type for e in dispatcher.events(submitted.id)]
        if backend.creates_as is ExecutionStatus.QUEUED:
            assert submitted.status is not ExecutionStatus.PENDING
            assert types[:2] == [EventType.CREATED, EventType.QUEUED]
        else:
            assert types[0] is EventType.CREATED

    def test_submitted_execution_completes(self, dispatcher: Dispatcher, backend: Backend) -> None:
        """Submit, wait: completed, with the pipeline's output as the result."""
        submitted = dispatcher.submit("conformance.echo", {"value": "ünï ✓"})
        assert submitted.backend == backend.name
        done = self._finish(dispatcher, submitted)
        assert done.status is ExecutionStatus.COMPLETED, done.error
        assert done.error is None
        assert done.result is not None
        assert done.result["outputs"]["conformance.echo"]["value"] == "ünï ✓"
        assert done.started_at is not None and done.finished_at is not None

    def test_completed_execution_has_its_events_in_order(self, dispatcher: Dispatcher) -> None:
        """Created first, completed last, one started, seq 1..n."""
        done = self._finish(dispatcher, dispatcher.submit("conformance.echo"))
        events = dispatcher.events(done.id)
        types = [e.event_type for e in events]
        assert types[0] is EventType.CREATED
        assert types[-1] is EventType.COMPLETED
        assert types.count(EventType.STARTED) == 1
        assert types.count(EventType.COMPLETED) == 1
        assert [e.seq for e in events] == list(range(1, len(events) + 1))

    def test_failing_pipeline_reaches_failed_with_the_error(self, dispatcher: Dispatcher) -> None:
        """A `StepResult.fail` ends `failed`, with the message and category kept."""
        submitted = dispatcher.submit("conformance.fail", {"message": "reject rate 7% > 1%"})
        done = self._finish(dispatcher, submitted)
        assert done.status is ExecutionStatus.FAILED
        assert done.error is not None and "reject rate 7% > 1%" in done.error
        assert done.error_category == ErrorCategory.DATA_QUALITY.value
        types = [e.event_type for e in dispatcher.events(done.id)]
        assert types[-1] is EventType.FAILED and types.count(EventType.FAILED) == 1

    def test_raising_pipeline_reaches_failed_as_user_code(self, dispatcher: Dispatcher) -> None:
        """An exception in user code ends `failed` with category USER_CODE."""
        done = self._finish(
            dispatcher, dispatcher.submit("conformance.raise", {"message": "kaboom"})
        )
        assert done.status is ExecutionStatus.FAILED
        assert done.error is not None and "kaboom" in done.error and "ValueError" in done.error
        assert done.error_category == ErrorCategory.USER_CODE.value

    def test_many_submissions_all_finish(self, dispatcher: Dispatcher) -> None:
        """Every one of a burst of submissions completes."""
        submitted = [dispatcher.submit("conformance.echo", {"value": str(i)}) for i in range(12)]
        for i, execution in enumerate(submitted):
            done = self._finish(dispatcher, execution)
            assert done.status is ExecutionStatus.COMPLETED, done.error
            assert done.result is not None
            assert done.result["outputs"]["conformance.echo"]["value"] == str(i)

    def test_invalid_params_create_no_execution(
        self, dispatcher: Dispatcher, store: LedgerStore
    ) -> None:
        """Validation fails before anything is persisted or handed to the backend."""
        with pytest.raises(InvalidParams):
            dispatcher.submit("conformance.echo", {"value": "x", "nope": 1})
        assert dispatcher.list() == []

    def test_health_is_reported(self, backend: Backend) -> None:
        """A started backend reports itself healthy, as a `BackendHealth`."""
        health = backend.health()
        assert isinstance(health, BackendHealth)
        assert health.healthy, health.detail
        assert isinstance(health.detail, str)

    def test_start_and_stop_are_idempotent(
        self, make_backend: BackendFactory, runner: ExecutionRunner
    ) -> None:
        """Starting twice, stopping twice, or stopping an unstarted backend does not raise."""
        never_started = make_backend(runner)
        never_started.stop()
        backend = make_backend(runner)
        backend.start()
        backend.start()
        assert isinstance(backend.health(), BackendHealth)
        backend.stop()
        backend.stop()
