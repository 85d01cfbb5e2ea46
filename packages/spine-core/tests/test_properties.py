"""Properties of the state machine and the workflow context, checked with hypothesis."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine_core.context import WorkflowContext, thaw
from spine_core.errors import IllegalTransition
from spine_core.events import STATUS_EVENTS
from spine_core.execution import NewExecution
from spine_core.memory import InMemoryLedgerStore
from spine_core.status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    ExecutionStatus,
    check_transition,
    is_terminal,
)
from spine_core.testing.strategies import (
    apply_transition_attempts,
    check_transition_sequence,
    json_objects,
    json_values,
    legal_paths,
    make_ledger_state_machine,
    reachable_statuses,
    statuses,
    transition_attempts,
)

S = ExecutionStatus


@given(transition_attempts(max_size=30))
def test_random_attempts_never_leave_the_state_machine(targets):
    check_transition_sequence(InMemoryLedgerStore(), targets)


@given(transition_attempts(max_size=30))
def test_every_observed_status_change_is_an_allowed_edge(targets):
    store = InMemoryLedgerStore()
    execution = store.create_execution(NewExecution(name="p"))
    seen = [S.PENDING]
    for target in targets:
        [(_, changed)] = apply_transition_attempts(store, execution.id, [target])
        now = store.get_execution(execution.id).status
        if changed:
            assert now in ALLOWED_TRANSITIONS[seen[-1]] and now is target
            seen.append(now)
        else:
            assert now is seen[-1]
    events = store.list_events(execution.id)
    assert len(events) == len(seen)  # created + one per successful change, none for refusals
    assert [e.event_type for e in events[1:]] == [STATUS_EVENTS[s] for s in seen[1:]]
    assert set(seen) <= reachable_statuses()


@given(legal_paths(max_size=12), statuses())
def test_terminal_states_stay_terminal(path, target):
    store = InMemoryLedgerStore()
    execution = store.create_execution(NewExecution(name="p"))
    for step in path:
        store.transition(execution.id, step)
    current = path[-1] if path else S.PENDING
    if current in (S.COMPLETED, S.CANCELLED, S.DEAD_LETTERED):
        with pytest.raises(IllegalTransition):
            store.transition(execution.id, target)
    elif current is S.FAILED:
        if target in (S.DEAD_LETTERED, S.QUEUED):
            store.transition(execution.id, target)
        else:
            with pytest.raises(IllegalTransition):
                store.transition(execution.id, target)


def test_terminal_sets_match_the_table():
    assert {s for s in S if not ALLOWED_TRANSITIONS[s]} == {
        S.COMPLETED,
        S.CANCELLED,
        S.DEAD_LETTERED,
    }
    assert ALLOWED_TRANSITIONS[S.FAILED] == {S.DEAD_LETTERED, S.QUEUED}
    assert S.FAILED in TERMINAL_STATUSES and is_terminal("failed")
    assert not is_terminal(S.CANCELLING)
    assert reachable_statuses() == set(S)
    with pytest.raises(IllegalTransition, match="completed -> running"):
        check_transition("completed", "running")


TestInMemoryLedgerMachine = make_ledger_state_machine(InMemoryLedgerStore).TestCase
TestInMemoryLedgerMachine.settings = settings(max_examples=50, stateful_step_count=30)


# ---- WorkflowContext --------------------------------------------------------------------------

outputs_maps = st.dictionaries(st.text(max_size=12), json_values(), max_size=6)


@given(json_objects(), outputs_maps, st.text(), st.text())
def test_context_survives_a_json_round_trip(params, outputs, workflow, run_id):
    ctx = WorkflowContext(workflow, run_id, params, outputs)
    text = ctx.to_json()
    back = WorkflowContext.from_json(text)
    assert back == ctx
    assert thaw(back.params) == json.loads(json.dumps(params))
    assert thaw(back.outputs) == json.loads(json.dumps(outputs))
    assert back.to_json() == text


@given(json_objects(), outputs_maps, st.text(max_size=12), json_values())
def test_with_output_never_mutates_the_original(params, outputs, step, value):
    ctx = WorkflowContext("wf", "run", params, outputs)
    before = ctx.to_json()
    new = ctx.with_output(step, value)
    assert ctx.to_json() == before
    assert thaw(new.output(step)) == json.loads(json.dumps(value))
    assert new.params == ctx.params
    if step not in outputs:
        assert step not in ctx.outputs


@given(json_objects(), json_values())
def test_context_values_cannot_be_mutated_through_the_context(params, value):
    original = {"x": [value], "d": {"k": value}}
    ctx = WorkflowContext("wf", "run", params, {"s": original})
    original["x"].append("changed")  # the caller's own data stays theirs
    assert len(ctx.output("s")["x"]) == 1
    with pytest.raises(TypeError):
        ctx.output("s")["d"]["k"] = 1  # read-only view
    with pytest.raises((TypeError, AttributeError)):
        ctx.output("s")["x"].append(1)  # tuple


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1: "int key"}, {1, 2}, object()])
def test_context_rejects_non_json_values(bad):
    with pytest.raises(TypeError):
        WorkflowContext("wf", "run", {}, {"s": bad})
    with pytest.raises(TypeError):
        WorkflowContext("wf", "run", {}, {}).with_output("s", bad)
