"""The conformance suite every `CheckpointStore` runs (in-memory, process-local, PostgreSQL).

Subclass `CheckpointStoreConformance` and provide `ledger` (a fresh `LedgerStore`) and
`checkpoints` (the `CheckpointStore` over it; often the same object)::

    class TestMemoryCheckpoints(CheckpointStoreConformance):
        @pytest.fixture
        def ledger(self):
            return InMemoryLedgerStore()

        @pytest.fixture
        def checkpoints(self, ledger):
            return ledger
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spine_core.durable.state import Checkpoint, CheckpointRejected, RunState, StatusMove
from spine_core.errors import IllegalTransition
from spine_core.events import EventType
from spine_core.execution import Execution, NewExecution
from spine_core.ports import CheckpointStore, LedgerStore
from spine_core.status import ExecutionStatus

S = ExecutionStatus

# PostgreSQL's jsonb holds neither NUL nor lone surrogates; every other character is fair game.
_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


def _running(ledger: LedgerStore, worker_id: str | None = "w1") -> Execution:
    execution = ledger.create_execution(NewExecution(name="wf", status=S.QUEUED))
    return ledger.transition(execution.id, S.RUNNING, worker_id=worker_id)


def _checkpoint(state: RunState, worker_id: str | None = "w1", finish=None) -> Checkpoint:
    return Checkpoint(
        state, EventType.STAGE_COMPLETED, {"step": "s", "attempt": 1}, worker_id, finish
    )


class CheckpointStoreConformance:
    """The checkpoint contract."""

    @pytest.fixture
    def ledger(self) -> LedgerStore:
        """A fresh, empty ledger."""
        raise NotImplementedError("provide a `ledger` fixture")

    @pytest.fixture
    def checkpoints(self, ledger: LedgerStore) -> CheckpointStore:
        """The checkpoint store over `ledger`."""
        raise NotImplementedError("provide a `checkpoints` fixture")

    def test_no_state_before_the_first_checkpoint(self, ledger, checkpoints) -> None:
        """A new execution has no run state."""
        assert checkpoints.load_run_state(_running(ledger).id) is None

    def test_saved_state_loads_back_equal(self, ledger, checkpoints) -> None:
        """Cursor, outputs, steps and attempt come back as written, unicode included."""
        execution = _running(ledger)
        state = RunState("wf", 3, 2, {"a": {"ü": [1, 2.5, None]}, "b": "✓"}, ({"step": "a"},), 2)
        row = checkpoints.save_checkpoint(execution.id, _checkpoint(state))
        assert row.status is S.RUNNING
        assert checkpoints.load_run_state(execution.id) == state

    def test_checkpoint_appends_its_event(self, ledger, checkpoints) -> None:
        """The step's event is in the ledger after the save, with its payload."""
        execution = _running(ledger)
        checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 1)))
        last = ledger.list_events(execution.id)[-1]
        assert last.event_type is EventType.STAGE_COMPLETED
        assert last.payload == {"step": "s", "attempt": 1}

    def test_finish_moves_the_status_with_the_checkpoint(self, ledger, checkpoints) -> None:
        """A checkpoint that ends the run leaves the row completed with its result."""
        execution = _running(ledger)
        move = StatusMove(S.COMPLETED, result={"outputs": {"a": 1}})
        row = checkpoints.save_checkpoint(
            execution.id, _checkpoint(RunState("wf", 1, 1), finish=move)
        )
        assert row.status is S.COMPLETED and row.result == {"outputs": {"a": 1}}
        types = [e.event_type for e in ledger.list_events(execution.id)]
        assert types[-2:] == [EventType.STAGE_COMPLETED, EventType.COMPLETED]

    def test_another_workers_checkpoint_is_refused(self, ledger, checkpoints) -> None:
        """After a lease was lost and someone else claimed the row, the old holder cannot write."""
        execution = _running(ledger, "w1")
        checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 1)))
        events = len(ledger.list_events(execution.id))
        with pytest.raises(CheckpointRejected):
            checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 2), "w2"))
        assert checkpoints.load_run_state(execution.id).cursor == 1
        assert len(ledger.list_events(execution.id)) == events

    @pytest.mark.parametrize("status", [S.QUEUED, S.COMPLETED, S.FAILED])
    def test_a_row_not_running_refuses_checkpoints(self, ledger, checkpoints, status) -> None:
        """Requeued, finished or failed: nothing is written."""
        execution = _running(ledger)
        ledger.transition(execution.id, status)
        with pytest.raises(CheckpointRejected):
            checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 1)))
        assert ledger.get_execution(execution.id).status is status

    def test_cancel_request_comes_back_in_the_answer(self, ledger, checkpoints) -> None:
        """A row moved to cancelling answers the next checkpoint with that status."""
        execution = _running(ledger)
        ledger.transition(execution.id, S.CANCELLING)
        row = checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 1)))
        assert row.status is S.CANCELLING

    def test_an_illegal_finish_writes_nothing(self, ledger, checkpoints) -> None:
        """Cancelling -> cancelling is not a move: refused, and the state stays as it was."""
        execution = _running(ledger)
        ledger.transition(execution.id, S.CANCELLING)
        with pytest.raises(IllegalTransition):
            checkpoints.save_checkpoint(
                execution.id,
                _checkpoint(RunState("wf", 1, 1), finish=StatusMove(S.CANCELLING)),
            )
        assert ledger.get_execution(execution.id).status is S.CANCELLING

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(outputs=st.dictionaries(_text, json_values, max_size=5))
    def test_any_json_outputs_round_trip(self, ledger, checkpoints, outputs) -> None:
        """Whatever JSON a step returned reloads equal."""
        execution = _running(ledger)
        state = RunState("wf", 1, 1, outputs)
        checkpoints.save_checkpoint(execution.id, _checkpoint(state))
        assert checkpoints.load_run_state(execution.id) == state

    def test_unstorable_state_raises_and_keeps_the_earlier_checkpoint(
        self, ledger, checkpoints
    ) -> None:
        """NaN has no JSON form: ValueError, and the previous state and events stay."""
        execution = _running(ledger)
        checkpoints.save_checkpoint(execution.id, _checkpoint(RunState("wf", 1, 1, {"a": 1})))
        events = len(ledger.list_events(execution.id))
        with pytest.raises(ValueError):
            checkpoints.save_checkpoint(
                execution.id, _checkpoint(RunState("wf", 1, 2, {"a": 1, "b": float("nan")}))
            )
        assert checkpoints.load_run_state(execution.id) == RunState("wf", 1, 1, {"a": 1})
        assert len(ledger.list_events(execution.id)) == events
