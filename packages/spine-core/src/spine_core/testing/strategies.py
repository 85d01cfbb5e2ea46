"""Hypothesis strategies and checks for the execution state machine, reusable by every tier.

Typical use in a tier's tests::

    from hypothesis import given
    from spine_core.testing.strategies import check_transition_sequence, transition_attempts

    @given(transition_attempts())
    def test_sqlite_ledger_follows_the_state_machine(targets):
        check_transition_sequence(shared_store, targets)

or, for interleaved operations on many executions, a ready-made state machine::

    TestSqliteLedgerMachine = make_ledger_state_machine(lambda: open_sqlite_store()).TestCase
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from spine_core.errors import IllegalTransition
from spine_core.events import STATUS_EVENTS, EventType
from spine_core.execution import Lane, NewExecution, TriggerSource
from spine_core.ports import LedgerStore
from spine_core.status import ALLOWED_TRANSITIONS, ExecutionStatus

__all__ = [
    "apply_transition_attempts",
    "check_transition_sequence",
    "json_objects",
    "json_scalars",
    "json_values",
    "legal_paths",
    "make_ledger_state_machine",
    "new_executions",
    "reachable_statuses",
    "statuses",
    "transition_attempts",
]


def statuses() -> st.SearchStrategy[ExecutionStatus]:
    """Any execution status."""
    return st.sampled_from(list(ExecutionStatus))


def transition_attempts(max_size: int = 20) -> st.SearchStrategy[list[ExecutionStatus]]:
    """A sequence of target statuses to try in order; many will be illegal on purpose."""
    return st.lists(statuses(), max_size=max_size)


@st.composite
def legal_paths(
    draw: st.DrawFn, max_size: int = 10, start: ExecutionStatus = ExecutionStatus.PENDING
) -> list[ExecutionStatus]:
    """A walk through `ALLOWED_TRANSITIONS` from `start`: every step is legal."""
    path: list[ExecutionStatus] = []
    current = start
    while len(path) < max_size:
        allowed = sorted(ALLOWED_TRANSITIONS[current])
        if not allowed or not draw(st.booleans()):
            break
        current = draw(st.sampled_from(allowed))
        path.append(current)
    return path


def reachable_statuses(
    start: ExecutionStatus = ExecutionStatus.PENDING,
) -> frozenset[ExecutionStatus]:
    """Every status reachable from `start` (including itself) through legal transitions."""
    seen = {start}
    frontier = [start]
    while frontier:
        for nxt in ALLOWED_TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return frozenset(seen)


def json_scalars() -> st.SearchStrategy[Any]:
    """JSON scalars: null, booleans, integers, finite floats and any unicode text."""
    return (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53), max_value=2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )


def json_values(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Nested JSON values (lists and string-keyed objects of scalars)."""
    return st.recursive(
        json_scalars(),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 25) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object at the top, as params, results and step outputs are."""
    return st.dictionaries(st.text(max_size=10), json_values(max_leaves), max_size=6)


@st.composite
def new_executions(draw: st.DrawFn, name: str | None = None) -> NewExecution:
    """A `NewExecution` with random params, lane and trigger (no logical key, no parent)."""
    return NewExecution(
        name=name or draw(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True)),
        params=draw(json_objects(max_leaves=10)),
        lane=draw(st.sampled_from(list(Lane))),
        trigger_source=draw(st.sampled_from(list(TriggerSource))),
    )


def apply_transition_attempts(
    store: LedgerStore, execution_id: str, targets: Sequence[ExecutionStatus]
) -> list[tuple[ExecutionStatus, bool]]:
    """Try each target in order; report whether each attempt changed the status."""
    outcomes = []
    for target in targets:
        try:
            store.transition(execution_id, target)
        except IllegalTransition:
            outcomes.append((target, False))
        else:
            outcomes.append((target, True))
    return outcomes


def check_transition_sequence(
    store: LedgerStore, targets: Sequence[ExecutionStatus], *, name: str = "conformance.random"
) -> None:
    """Create an execution, try `targets` in order, and assert the state-machine contract.

    An attempt succeeds exactly when `ALLOWED_TRANSITIONS` allows it; a success changes the
    status and writes exactly one event (`STATUS_EVENTS[target]`, next `seq`); a refusal
    raises `IllegalTransition` and changes neither the status nor the events.
    """
    execution = store.create_execution(NewExecution(name=name))
    current = execution.status
    assert current is ExecutionStatus.PENDING
    expected_events = [EventType.CREATED]
    for target in targets:
        before_events = store.list_events(execution.id)
        legal = target in ALLOWED_TRANSITIONS[current]
        try:
            returned = store.transition(execution.id, target)
        except IllegalTransition:
            assert not legal, f"{current} -> {target} is legal but the store refused it"
            after = store.get_execution(execution.id)
            assert after.status == current, f"refused {current} -> {target} changed the status"
            assert store.list_events(execution.id) == before_events, (
                f"refused {current} -> {target} wrote an event"
            )
            continue
        assert legal, f"{current} -> {target} is illegal but the store allowed it"
        assert returned.status == target
        assert store.get_execution(execution.id).status == target
        events = store.list_events(execution.id)
        assert len(events) == len(before_events) + 1, f"{current} -> {target} wrote != 1 event"
        assert events[:-1] == before_events
        assert events[-1].event_type == STATUS_EVENTS[target]
        assert events[-1].seq == len(events)
        expected_events.append(STATUS_EVENTS[target])
        current = target
    events = store.list_events(execution.id)
    assert [e.event_type for e in events] == expected_events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert current in reachable_statuses()


def make_ledger_state_machine(
    store_factory: Callable[[], LedgerStore],
) -> type[RuleBasedStateMachine]:
    """A stateful test: create, transition, append and claim in random interleavings.

    A model tracks each execution's status and event count; after every operation the store
    must agree with it. Use `make_ledger_state_machine(factory).TestCase` as a test class.
    """

    class LedgerStateMachine(RuleBasedStateMachine):
        executions = Bundle("executions")

        def __init__(self) -> None:
            super().__init__()
            self.store = store_factory()
            self.status: dict[str, ExecutionStatus] = {}
            self.event_count: dict[str, int] = {}
            self.dedupe_keys: dict[str, set[str]] = {}

        @rule(target=executions, lane=st.sampled_from(list(Lane)))
        def create(self, lane: Lane) -> str:
            execution = self.store.create_execution(NewExecution(name="sm.job", lane=lane))
            self.status[execution.id] = ExecutionStatus.PENDING
            self.event_count[execution.id] = 1
            self.dedupe_keys[execution.id] = set()
            return execution.id

        @rule(execution_id=executions, to=statuses())
        def transition(self, execution_id: str, to: ExecutionStatus) -> None:
            current = self.status[execution_id]
            try:
                self.store.transition(execution_id, to)
            except IllegalTransition:
                assert to not in ALLOWED_TRANSITIONS[current]
                return
            assert to in ALLOWED_TRANSITIONS[current]
            self.status[execution_id] = to
            self.event_count[execution_id] += 1

        @rule(execution_id=executions, key=st.sampled_from(["a", "b", None]))
        def append_stage_event(self, execution_id: str, key: str | None) -> None:
            self.store.append_event(
                execution_id, EventType.STAGE_STARTED, {"stage": "s"}, dedupe_key=key
            )
            if key is None or key not in self.dedupe_keys[execution_id]:
                self.event_count[execution_id] += 1
            if key is not None:
                self.dedupe_keys[execution_id].add(key)

        @rule()
        def claim(self) -> None:
            claimed = self.store.claim_next("sm-worker")
            queued = sorted(i for i, s in self.status.items() if s is ExecutionStatus.QUEUED)
            if claimed is None:
                assert not queued
                return
            assert claimed.id in queued
            assert claimed.status is ExecutionStatus.RUNNING
            self.status[claimed.id] = ExecutionStatus.RUNNING
            self.event_count[claimed.id] += 1

        @invariant()
        def store_agrees_with_model(self) -> None:
            for execution_id, status in self.status.items():
                assert self.store.get_execution(execution_id).status == status
                events = self.store.list_events(execution_id)
                assert len(events) == self.event_count[execution_id]
                assert [e.seq for e in events] == list(range(1, len(events) + 1))

        def teardown(self) -> None:
            self.store.close()

    return LedgerStateMachine
