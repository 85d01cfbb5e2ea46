"""The conformance suite every `FanOutStore` runs (in-memory, PostgreSQL).

Subclass `FanOutStoreConformance` and provide `ledger`: a fresh store that is both the
`LedgerStore` and the `FanOutStore`.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spine_core.durable.children import ChildWait, FanOut
from spine_core.durable.state import CheckpointRejected, RunState
from spine_core.execution import Execution, NewExecution, TriggerSource, utcnow
from spine_core.ports import FanOutStore, LedgerStore
from spine_core.status import ACTIVE_STATUSES, ExecutionStatus

S = ExecutionStatus
_ACTIVE = ACTIVE_STATUSES - {S.PENDING}


def running_parent(ledger: LedgerStore, worker_id: str = "w1") -> Execution:
    """A parent execution, claimed by `worker_id`."""
    parent = ledger.create_execution(NewExecution(name="wf", status=S.QUEUED))
    return ledger.transition(parent.id, S.RUNNING, worker_id=worker_id)


def wait_for(
    parent: Execution, count: int, max_active: int, *, on_failure: str = "fail"
) -> ChildWait:
    """The parent's move to waiting for `count` new children, `max_active` at a time."""
    children = [
        NewExecution(
            name="wf@1/each",
            params={"item": i},
            trigger_source=TriggerSource.WORKFLOW,
            parent_execution_id=parent.id,
            status=S.PENDING,
        )
        for i in range(count)
    ]
    fanout = FanOut("each", count, max_active, on_failure, children[0].id)
    return ChildWait(
        state=RunState("wf", 1, 0, fanout=fanout.to_dict()),
        worker_id=parent.worker_id,
        recheck_at=utcnow() + timedelta(seconds=30),
        children=children,
        release=max_active,
        payload={"reason": "waiting for children"},
    )


def end_child(store, child_id: str, to: ExecutionStatus = S.COMPLETED):
    """Run a queued child to `to` the way a worker would, then tell its parent."""
    store.transition(child_id, S.RUNNING, worker_id="child-worker")
    store.transition(child_id, to, error=None if to is S.COMPLETED else "boom")
    return store.child_finished(child_id)


def _due_now(row: Execution) -> bool:
    return row.due_at is not None and row.due_at <= utcnow()


class FanOutStoreConformance:
    """The fan-out contract: children, releases within `max_active`, and the parent's wake."""

    @pytest.fixture
    def ledger(self) -> FanOutStore:
        """A fresh, empty store (ledger and fan-out in one)."""
        raise NotImplementedError("provide a `ledger` fixture")

    def test_waiting_creates_children_and_starts_the_first(self, ledger) -> None:
        """Children exist in item order, `max_active` of them queued; the parent sleeps."""
        parent = running_parent(ledger)
        row, released = ledger.await_children(parent.id, wait_for(parent, 5, 2))
        assert row.status is S.QUEUED and row.due_at > utcnow() + timedelta(seconds=20)
        children = ledger.list_children(parent.id)
        assert [c.params["item"] for c in children] == [0, 1, 2, 3, 4]
        assert [c.status for c in children] == [S.QUEUED, S.QUEUED, *[S.PENDING] * 3]
        assert [c.id for c in released] == [c.id for c in children[:2]]
        assert ledger.load_run_state(parent.id).fanout["children"] == 5
        assert ledger.list_events(parent.id)[-1].payload["reason"] == "waiting for children"
        for execution_id in (parent.id, *(c.id for c in children)):
            assert all("attempt" in e.payload for e in ledger.list_events(execution_id))

    def test_only_the_holder_can_wait(self, ledger) -> None:
        """Another worker's parent is refused, and nothing is created."""
        parent = running_parent(ledger, "w1")
        wait = wait_for(parent, 3, 1)
        stranger = ChildWait(wait.state, "w2", wait.recheck_at, wait.children, wait.release)
        with pytest.raises(CheckpointRejected):
            ledger.await_children(parent.id, stranger)
        assert ledger.list_children(parent.id) == []
        assert ledger.get_execution(parent.id).status is S.RUNNING

    def test_a_cancel_request_wins_over_waiting(self, ledger) -> None:
        """A parent asked to cancel stays cancelling and spawns nothing."""
        parent = running_parent(ledger)
        ledger.transition(parent.id, S.CANCELLING)
        row, released = ledger.await_children(parent.id, wait_for(parent, 3, 3))
        assert row.status is S.CANCELLING and released == []
        assert ledger.list_children(parent.id) == []

    def test_an_ending_child_starts_the_next(self, ledger) -> None:
        """A freed slot goes to the oldest pending sibling; the parent sleeps on."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 4, 2))
        first, _, third, _ = ledger.list_children(parent.id)
        news = end_child(ledger, first.id)
        assert [c.id for c in news.released] == [third.id]
        assert news.woken is None
        assert not _due_now(ledger.get_execution(parent.id))

    def test_the_last_child_wakes_the_parent(self, ledger) -> None:
        """Once no child is left to run, the parent is due at once."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 2, 2))
        first, second = ledger.list_children(parent.id)
        assert end_child(ledger, first.id).woken is None
        news = end_child(ledger, second.id)
        assert news.woken is not None and news.woken.id == parent.id
        assert _due_now(ledger.get_execution(parent.id))

    def test_a_failed_child_wakes_the_parent_at_once(self, ledger) -> None:
        """Fail fast: the parent wakes on the first failure and nothing more starts."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 3, 1))
        first = ledger.list_children(parent.id)[0]
        news = end_child(ledger, first.id, S.FAILED)
        assert news.woken is not None and list(news.released) == []

    def test_collect_waits_for_every_child(self, ledger) -> None:
        """Collecting failures, a failed child only frees its slot."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 2, 1, on_failure="collect"))
        first, second = ledger.list_children(parent.id)
        news = end_child(ledger, first.id, S.FAILED)
        assert news.woken is None and [c.id for c in news.released] == [second.id]
        assert end_child(ledger, second.id).woken is not None

    def test_a_wake_while_the_parent_runs_is_kept(self, ledger) -> None:
        """A child ending while its parent counts makes the parent's next wait end at once."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 2, 2))
        first, second = ledger.list_children(parent.id)
        end_child(ledger, first.id)
        ledger.transition(parent.id, S.RUNNING, worker_id="w1")  # woken by the recheck
        end_child(ledger, second.id)
        row, _ = ledger.await_children(parent.id, _rewait(ledger, parent.id))
        assert row.status is S.QUEUED and _due_now(row)

    def test_cancel_children_stops_every_active_child(self, ledger) -> None:
        """Pending and queued children end cancelled, a running one is asked to stop."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 4, 2))
        first = ledger.list_children(parent.id)[0]
        ledger.transition(first.id, S.RUNNING, worker_id="child-worker")
        moved = ledger.cancel_children(parent.id)
        assert len(moved) == 4
        statuses = [c.status for c in ledger.list_children(parent.id)]
        assert statuses == [S.CANCELLING, S.CANCELLED, S.CANCELLED, S.CANCELLED]

    def test_a_child_without_a_waiting_parent_changes_nothing(self, ledger) -> None:
        """An ordinary execution with a parent link (a retry) wakes nobody."""
        parent = running_parent(ledger)
        child = ledger.create_execution(
            NewExecution(name="wf", parent_execution_id=parent.id, status=S.QUEUED)
        )
        news = end_child(ledger, child.id)
        assert news.woken is None and list(news.released) == []
        assert ledger.get_execution(parent.id).status is S.RUNNING

    def test_an_earlier_rounds_children_count_no_more(self, ledger) -> None:
        """A map run again (its parent resumed) waits for its new children only."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 1, 1))
        (old,) = ledger.list_children(parent.id)
        end_child(ledger, old.id, S.FAILED)
        ledger.transition(parent.id, S.RUNNING, worker_id="w1")
        row, released = ledger.await_children(parent.id, wait_for(parent, 2, 1))
        assert row.status is S.QUEUED and row.due_at > utcnow() + timedelta(seconds=20)
        assert len(released) == 1 and released[0].id > old.id
        news = end_child(ledger, released[0].id)
        assert news.woken is None and len(news.released) == 1

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        count=st.integers(1, 8),
        max_active=st.integers(1, 4),
        order=st.randoms(use_true_random=False),
    )
    def test_siblings_never_exceed_max_active_and_wake_once(
        self, ledger, count, max_active, order
    ) -> None:
        """Whatever order children end in, at most `max_active` run and the last one wakes."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, count, max_active))
        wakes = 0
        while True:
            children = ledger.list_children(parent.id)
            active = [c for c in children if c.status in _ACTIVE]
            assert len(active) <= max_active
            if not active:
                break
            news = end_child(ledger, order.choice(active).id)
            wakes += news.woken is not None
        assert all(c.status is S.COMPLETED for c in ledger.list_children(parent.id))
        assert wakes == 1 and _due_now(ledger.get_execution(parent.id))

    def test_siblings_ending_together_wake_the_parent(self, ledger) -> None:
        """Children ended from many threads at once: the parent is woken, not forgotten."""
        parent = running_parent(ledger)
        ledger.await_children(parent.id, wait_for(parent, 12, 12))
        children = ledger.list_children(parent.id)
        barrier = threading.Barrier(len(children))
        woken: list[bool] = []

        def finish(child_id: str) -> None:
            ledger.transition(child_id, S.RUNNING, worker_id="child-worker")
            ledger.transition(child_id, S.COMPLETED)
            barrier.wait()
            woken.append(ledger.child_finished(child_id).woken is not None)

        threads = [threading.Thread(target=finish, args=(c.id,)) for c in children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(woken) >= 1 and _due_now(ledger.get_execution(parent.id))


def _rewait(ledger, parent_id: str) -> ChildWait:
    state = ledger.load_run_state(parent_id)
    return ChildWait(state, "w1", utcnow() + timedelta(seconds=30))
