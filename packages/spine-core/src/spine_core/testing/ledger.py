"""The conformance suite every `LedgerStore` implementation runs (memory, SQLite, PostgreSQL).

Subclass `LedgerStoreConformance` in a test module and provide a `store` fixture that yields a
fresh, empty store::

    class TestSqliteLedger(LedgerStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            store = SqliteLedgerStore(tmp_path / "ledger.db")
            yield store
            store.close()

If the store also implements `RunHistoryStore`, the run-history tests run too; otherwise they
are skipped with the reason.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from spine_core.errors import ExecutionNotFound, IllegalTransition
from spine_core.events import STATUS_EVENTS, EventType
from spine_core.execution import (
    Execution,
    ExecutionFilter,
    Lane,
    NewExecution,
    TriggerSource,
    utcnow,
)
from spine_core.ports import (
    LedgerStore,
    RunFinished,
    RunHistoryStore,
    RunStarted,
    StepRunRecord,
)
from spine_core.status import ALLOWED_TRANSITIONS, ExecutionStatus, is_terminal
from spine_core.testing.strategies import check_transition_sequence, transition_attempts

S = ExecutionStatus

PATH_TO: dict[ExecutionStatus, tuple[ExecutionStatus, ...]] = {
    S.PENDING: (),
    S.QUEUED: (S.QUEUED,),
    S.RUNNING: (S.QUEUED, S.RUNNING),
    S.COMPLETED: (S.QUEUED, S.RUNNING, S.COMPLETED),
    S.FAILED: (S.QUEUED, S.RUNNING, S.FAILED),
    S.DEAD_LETTERED: (S.QUEUED, S.RUNNING, S.FAILED, S.DEAD_LETTERED),
    S.CANCELLING: (S.QUEUED, S.RUNNING, S.CANCELLING),
    S.CANCELLED: (S.QUEUED, S.CANCELLED),
}
"""A legal way to bring a new execution into each status."""

ALL_PAIRS = [(a, b) for a in ExecutionStatus for b in ExecutionStatus]

NESTED_RESULT: dict[str, Any] = {
    "outputs": {
        "ingest": {"rows": 3, "rejected": [{"line": 7, "reason": "bad symbol ÄÖÜ"}]},
        "metrics": {"vwap": 169.9123, "symbols": ["AAPL", "BRK.B", "日本株"], "ok": True},
    },
    "steps": [{"step": "ingest", "status": "ok", "duration_ms": 1.5, "output": None}],
    "note": "unicode ✓ — “quotes”, emoji 📈, nul-free",
    "empty": {},
    "list_of_lists": [[1, 2], [], [None, False]],
    "big": 2**53,
    "negative": -0.25,
}


def _new(store: LedgerStore, name: str = "conformance.job", **fields: Any) -> Execution:
    return store.create_execution(NewExecution(name=name, **fields))


def _drive(store: LedgerStore, execution_id: str, status: ExecutionStatus) -> Execution:
    execution = store.get_execution(execution_id)
    for step in PATH_TO[status]:
        execution = store.transition(execution_id, step)
    return execution


def _close_to(a: Any, b: Any, tolerance: timedelta = timedelta(milliseconds=1)) -> bool:
    return a is not None and b is not None and abs(a - b) <= tolerance


class LedgerStoreConformance:
    """The ledger contract. Subclasses provide a `store` fixture: a fresh, empty store."""

    race_threads = 8
    """Threads racing in the concurrency tests."""
    race_executions = 50
    """Queued executions the claim race drains."""

    @pytest.fixture
    def store(self) -> LedgerStore:
        """Override in the subclass: a fresh, empty store."""
        raise NotImplementedError("subclass LedgerStoreConformance and provide a `store` fixture")

    # ---- create / get ------------------------------------------------------------------------

    def test_create_returns_a_pending_execution_with_every_field(self, store: LedgerStore) -> None:
        """Create stores every field of the request and starts in `pending`."""
        parent = _new(store, "parent.job")
        new = NewExecution(
            name="otc.ingest",
            params={"file": "data/ünï.psv", "nested": {"days": [1, 2], "flag": True}},
            lane=Lane.BACKFILL,
            trigger_source=TriggerSource.API,
            logical_key="otc:2024-03-05",
            parent_execution_id=parent.id,
            retry_count=2,
            backend="local",
        )
        created = store.create_execution(new)
        assert created.id == new.id
        assert created.status is S.PENDING
        for got in (created, store.get_execution(new.id)):
            assert got.name == "otc.ingest"
            assert got.params == new.params
            assert got.lane is Lane.BACKFILL
            assert got.trigger_source is TriggerSource.API
            assert got.logical_key == "otc:2024-03-05"
            assert got.parent_execution_id == parent.id
            assert got.retry_count == 2
            assert got.backend == "local"
            assert got.status is S.PENDING
            assert got.created_at.tzinfo is not None
            assert got.started_at is None and got.finished_at is None
            assert got.error is None and got.error_category is None and got.result is None

    def test_get_returns_what_create_returned(self, store: LedgerStore) -> None:
        """A read gives back the same row the create returned."""
        created = _new(store, params={"a": 1})
        assert store.get_execution(created.id).to_dict() == created.to_dict()

    def test_unknown_id_raises_execution_not_found(self, store: LedgerStore) -> None:
        """Every per-execution operation on an unknown id raises `ExecutionNotFound`."""
        missing = NewExecution(name="never.created").id
        with pytest.raises(ExecutionNotFound):
            store.get_execution(missing)
        with pytest.raises(ExecutionNotFound):
            store.transition(missing, S.QUEUED)
        with pytest.raises(ExecutionNotFound):
            store.list_events(missing)
        with pytest.raises(ExecutionNotFound):
            store.append_event(missing, EventType.STAGE_STARTED, {})

    def test_create_writes_exactly_one_created_event(self, store: LedgerStore) -> None:
        """A new execution has one event, `created`, with seq 1."""
        created = _new(store)
        events = store.list_events(created.id)
        assert [(e.seq, e.event_type) for e in events] == [(1, EventType.CREATED)]
        assert events[0].execution_id == created.id
        assert events[0].created_at.tzinfo is not None

    def test_create_queued_is_claimable_with_created_then_queued(self, store: LedgerStore) -> None:
        """Created queued: events `created`, `queued`; a worker can claim it at once."""
        created = _new(store, status=S.QUEUED)
        assert created.status is S.QUEUED
        assert store.get_execution(created.id).status is S.QUEUED
        events = store.list_events(created.id)
        assert [(e.seq, e.event_type) for e in events] == [
            (1, EventType.CREATED),
            (2, EventType.QUEUED),
        ]
        claimed = store.claim_next("worker-1")
        assert claimed is not None and claimed.id == created.id
        assert claimed.status is S.RUNNING
        assert [e.event_type for e in store.list_events(created.id)][-1] is EventType.STARTED

    def test_create_in_any_other_status_is_refused(self) -> None:
        """Nothing may be born running or finished: the request itself is invalid."""
        for status in set(S) - {S.PENDING, S.QUEUED}:
            with pytest.raises(ValueError, match="created"):
                NewExecution(name="conformance.job", status=status)

    # ---- list ----------------------------------------------------------------------------------

    def test_list_is_empty_for_an_empty_store(self, store: LedgerStore) -> None:
        """Nothing created, nothing listed."""
        assert store.list_executions(ExecutionFilter()) == []

    def test_list_is_newest_first_and_respects_limit(self, store: LedgerStore) -> None:
        """Listing is newest first; `limit` caps it."""
        ids = [_new(store, f"job.{i}").id for i in range(5)]
        listed = [e.id for e in store.list_executions(ExecutionFilter())]
        assert listed == list(reversed(ids))
        assert [e.id for e in store.list_executions(ExecutionFilter(limit=2))] == ids[::-1][:2]

    def test_list_filters_by_status(self, store: LedgerStore) -> None:
        """`status` filter."""
        a, b, c = (_new(store).id for _ in range(3))
        store.transition(b, S.QUEUED)
        store.transition(c, S.RUNNING)
        store.transition(c, S.FAILED, error="boom")
        assert [e.id for e in store.list_executions(ExecutionFilter(status=S.QUEUED))] == [b]
        assert [e.id for e in store.list_executions(ExecutionFilter(status=S.FAILED))] == [c]
        assert [e.id for e in store.list_executions(ExecutionFilter(status=S.PENDING))] == [a]
        assert store.list_executions(ExecutionFilter(status=S.COMPLETED)) == []

    def test_list_filters_by_name(self, store: LedgerStore) -> None:
        """`name` filter is an exact match."""
        a = _new(store, "otc.ingest").id
        _new(store, "otc.normalize")
        c = _new(store, "otc.ingest").id
        _new(store, "otc.ingest.extra")
        listed = store.list_executions(ExecutionFilter(name="otc.ingest"))
        assert [e.id for e in listed] == [c, a]

    def test_list_filters_by_logical_key_and_parent(self, store: LedgerStore) -> None:
        """`logical_key` and `parent_execution_id` filters."""
        parent = _new(store).id
        keyed = _new(store, logical_key="otc:2024-03-05").id
        _new(store, logical_key="otc:2024-03-06")
        child1 = _new(store, parent_execution_id=parent, retry_count=1).id
        child2 = _new(store, parent_execution_id=parent, retry_count=2).id
        by_key = store.list_executions(ExecutionFilter(logical_key="otc:2024-03-05"))
        assert [e.id for e in by_key] == [keyed]
        by_parent = store.list_executions(ExecutionFilter(parent_execution_id=parent))
        assert [e.id for e in by_parent] == [child2, child1]

    def test_list_filters_by_created_since_inclusive(self, store: LedgerStore) -> None:
        """`created_since` keeps executions created at or after the moment."""
        old = _new(store).id
        time.sleep(0.02)
        middle = _new(store)
        time.sleep(0.02)
        new = _new(store).id
        listed = store.list_executions(ExecutionFilter(created_since=middle.created_at))
        assert [e.id for e in listed] == [new, middle.id]
        assert old not in {e.id for e in listed}

    def test_list_combines_filters(self, store: LedgerStore) -> None:
        """Filters combine with AND."""
        a = _new(store, "x").id
        _new(store, "y")
        b = _new(store, "x").id
        store.transition(b, S.QUEUED)
        flt = ExecutionFilter(name="x", status=S.PENDING)
        assert [e.id for e in store.list_executions(flt)] == [a]

    def test_cursor_paging_with_before_id(self, store: LedgerStore) -> None:
        """Paging with `before_id` visits every execution once, newest first."""
        ids = [_new(store, f"page.{i}").id for i in range(7)]
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = store.list_executions(ExecutionFilter(before_id=cursor, limit=3))
            if not page:
                break
            pages += 1
            assert len(page) <= 3
            seen += [e.id for e in page]
            cursor = page[-1].id
        assert seen == list(reversed(ids))
        assert pages == 3

    # ---- transitions ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("source", "target"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS]
    )
    def test_every_status_pair(
        self, store: LedgerStore, source: ExecutionStatus, target: ExecutionStatus
    ) -> None:
        """Legal: status changes with exactly one event. Illegal: raises, nothing changes."""
        execution = _drive(store, _new(store).id, source)
        before = store.get_execution(execution.id)
        events_before = store.list_events(execution.id)
        assert before.status is source
        if target in ALLOWED_TRANSITIONS[source]:
            returned = store.transition(execution.id, target)
            after = store.get_execution(execution.id)
            assert returned.status is target and after.status is target
            events = store.list_events(execution.id)
            assert events[:-1] == events_before
            assert len(events) == len(events_before) + 1
            assert events[-1].event_type is STATUS_EVENTS[target]
            assert events[-1].seq == len(events)
        else:
            with pytest.raises(IllegalTransition):
                store.transition(execution.id, target)
            assert store.get_execution(execution.id).to_dict() == before.to_dict()
            assert store.list_events(execution.id) == events_before

    @pytest.mark.parametrize(
        "path",
        [
            (S.QUEUED, S.RUNNING, S.COMPLETED),
            (S.RUNNING, S.FAILED, S.DEAD_LETTERED),
            (S.QUEUED, S.CANCELLED),
            (S.RUNNING, S.CANCELLING, S.CANCELLED),
            (S.QUEUED, S.RUNNING, S.QUEUED, S.RUNNING, S.COMPLETED),
            (S.FAILED,),
        ],
        ids=lambda p: "-".join(s.value for s in p),
    )
    def test_legal_paths_write_one_event_per_change(
        self, store: LedgerStore, path: tuple[ExecutionStatus, ...]
    ) -> None:
        """Each status change along a path is visible with exactly its own event."""
        execution_id = _new(store).id
        expected = [EventType.CREATED]
        for target in path:
            store.transition(execution_id, target)
            expected.append(STATUS_EVENTS[target])
            assert store.get_execution(execution_id).status is target
            events = store.list_events(execution_id)
            assert [e.event_type for e in events] == expected
            assert [e.seq for e in events] == list(range(1, len(expected) + 1))

    def test_status_events_carry_their_attempt(self, store: LedgerStore) -> None:
        """Every status event names its attempt: 1 before any checkpoint, or the caller's."""
        execution = store.create_execution(NewExecution(name="wf", status=S.QUEUED))
        store.transition(execution.id, S.RUNNING, worker_id="w1")
        store.transition(execution.id, S.FAILED, error="boom", payload={"attempt": 3})
        events = store.list_events(execution.id)
        assert [(e.event_type, e.payload["attempt"]) for e in events] == [
            (EventType.CREATED, 1),
            (EventType.QUEUED, 1),
            (EventType.STARTED, 1),
            (EventType.FAILED, 3),
        ]

    def test_transition_payload_is_stored_on_the_event(self, store: LedgerStore) -> None:
        """`payload` given to a transition is carried by its event."""
        execution_id = _new(store).id
        store.transition(execution_id, S.QUEUED, payload={"queue": "normal", "n": 1})
        event = store.list_events(execution_id)[-1]
        assert event.event_type is EventType.QUEUED
        assert event.payload["queue"] == "normal" and event.payload["n"] == 1

    def test_timestamps_follow_the_status(self, store: LedgerStore) -> None:
        """`started_at` is set on running, `finished_at` on a terminal status."""
        created = _new(store)
        queued = store.transition(created.id, S.QUEUED)
        assert queued.started_at is None and queued.finished_at is None
        running = store.transition(created.id, S.RUNNING, worker_id="w-1")
        assert running.started_at is not None and running.started_at >= created.created_at
        assert running.finished_at is None
        assert running.updated_at >= created.created_at
        done = store.transition(created.id, S.COMPLETED, result={"ok": True})
        assert done.finished_at is not None and done.finished_at >= running.started_at
        assert _close_to(done.started_at, running.started_at)
        stored = store.get_execution(created.id)
        assert _close_to(stored.started_at, running.started_at)
        assert _close_to(stored.finished_at, done.finished_at)
        for status in (S.FAILED, S.CANCELLED):
            other = _drive(store, _new(store).id, status)
            assert store.get_execution(other.id).finished_at is not None
            assert is_terminal(status)

    def test_queued_again_clears_the_old_error(self, store: LedgerStore) -> None:
        """A failed execution resumed (failed -> queued) no longer shows its old error."""
        execution_id = _new(store).id
        store.transition(execution_id, S.RUNNING)
        store.transition(execution_id, S.FAILED, error="boom", error_category="USER_CODE")
        queued = store.transition(execution_id, S.QUEUED)
        assert queued.error is None and queued.error_category is None
        stored = store.get_execution(execution_id)
        assert stored.error is None and stored.error_category is None

    def test_worker_id_is_recorded_when_running(self, store: LedgerStore) -> None:
        """The worker that moved an execution to running is stored."""
        execution_id = _new(store).id
        store.transition(execution_id, S.RUNNING, worker_id="worker-7")
        assert store.get_execution(execution_id).worker_id == "worker-7"

    def test_error_is_persisted(self, store: LedgerStore) -> None:
        """`error` and `error_category` survive a read, unicode included."""
        execution_id = _new(store).id
        store.transition(execution_id, S.RUNNING)
        failed = store.transition(
            execution_id,
            S.FAILED,
            error="step 'ingest' failed: symbol “ÅPL” ✗",
            error_category="DATA_QUALITY",
            result={"steps": [{"step": "ingest", "status": "failed"}]},
        )
        for got in (failed, store.get_execution(execution_id)):
            assert got.error == "step 'ingest' failed: symbol “ÅPL” ✗"
            assert got.error_category == "DATA_QUALITY"
            assert got.result == {"steps": [{"step": "ingest", "status": "failed"}]}

    def test_result_round_trips_nested_json(self, store: LedgerStore) -> None:
        """A nested, unicode result reads back equal."""
        execution_id = _new(store, params={"symbols": ["日本株", "BRK.B"], "n": {"x": None}}).id
        store.transition(execution_id, S.RUNNING)
        done = store.transition(execution_id, S.COMPLETED, result=NESTED_RESULT)
        assert done.result == NESTED_RESULT
        stored = store.get_execution(execution_id)
        assert stored.result == NESTED_RESULT
        assert stored.params == {"symbols": ["日本株", "BRK.B"], "n": {"x": None}}

    def test_result_is_a_copy(self, store: LedgerStore) -> None:
        """Mutating the dict passed in does not change what was stored."""
        execution_id = _new(store).id
        store.transition(execution_id, S.RUNNING)
        result: dict[str, Any] = {"outputs": {"a": [1]}}
        store.transition(execution_id, S.COMPLETED, result=result)
        result["outputs"]["a"].append(2)
        assert store.get_execution(execution_id).result == {"outputs": {"a": [1]}}

    # ---- events --------------------------------------------------------------------------------

    def test_events_are_sequenced_per_execution(self, store: LedgerStore) -> None:
        """Each execution's events are numbered 1..n, however writes interleave."""
        a, b = _new(store).id, _new(store).id
        store.transition(a, S.QUEUED)
        store.append_event(b, EventType.STAGE_STARTED, {"stage": "load"})
        store.transition(b, S.RUNNING)
        store.transition(a, S.RUNNING)
        store.append_event(a, EventType.STAGE_STARTED, {"stage": "parse"})
        store.append_event(b, EventType.STAGE_COMPLETED, {"stage": "load"})
        store.transition(a, S.COMPLETED)
        store.transition(b, S.FAILED, error="x")
        events_a = store.list_events(a)
        events_b = store.list_events(b)
        assert [e.seq for e in events_a] == [1, 2, 3, 4, 5]
        assert [e.seq for e in events_b] == [1, 2, 3, 4, 5]
        assert [e.event_type for e in events_a] == [
            EventType.CREATED,
            EventType.QUEUED,
            EventType.STARTED,
            EventType.STAGE_STARTED,
            EventType.COMPLETED,
        ]
        assert [e.event_type for e in events_b] == [
            EventType.CREATED,
            EventType.STAGE_STARTED,
            EventType.STARTED,
            EventType.STAGE_COMPLETED,
            EventType.FAILED,
        ]
        assert {e.execution_id for e in events_a} == {a}
        assert {e.execution_id for e in events_b} == {b}

    def test_events_stay_sequenced_under_concurrent_writers(self, store: LedgerStore) -> None:
        """Threads appending to different executions never disturb each other's `seq`."""
        ids = [_new(store).id for _ in range(4)]
        per_thread = 20
        errors: list[BaseException] = []

        def writer(execution_id: str) -> None:
            try:
                for i in range(per_thread):
                    store.append_event(execution_id, EventType.STAGE_STARTED, {"i": i})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in ids for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        for execution_id in ids:
            events = store.list_events(execution_id)
            assert [e.seq for e in events] == list(range(1, 2 * per_thread + 2))

    def test_append_event_returns_the_stored_event(self, store: LedgerStore) -> None:
        """A stage event is appended after the status events, with its payload."""
        execution_id = _new(store).id
        event = store.append_event(
            execution_id, EventType.STAGE_COMPLETED, {"stage": "parse", "rows": 3, "ü": "✓"}
        )
        assert event.execution_id == execution_id
        assert event.seq == 2
        assert event.event_type is EventType.STAGE_COMPLETED
        assert event.payload == {"stage": "parse", "rows": 3, "ü": "✓"}
        assert store.list_events(execution_id)[-1] == event

    def test_append_event_with_same_dedupe_key_is_stored_once(self, store: LedgerStore) -> None:
        """A repeated `dedupe_key` returns the first event and stores nothing new."""
        execution_id = _new(store).id
        first = store.append_event(
            execution_id, EventType.STAGE_STARTED, {"try": 1}, dedupe_key="stage:parse:start"
        )
        again = store.append_event(
            execution_id, EventType.STAGE_STARTED, {"try": 2}, dedupe_key="stage:parse:start"
        )
        assert again == first
        assert again.payload == {"try": 1}
        other = store.append_event(
            execution_id, EventType.STAGE_STARTED, {"try": 3}, dedupe_key="stage:load:start"
        )
        assert other.seq == first.seq + 1
        events = store.list_events(execution_id)
        assert [e.seq for e in events] == [1, 2, 3]
        assert Counter(e.dedupe_key for e in events)["stage:parse:start"] == 1

    def test_dedupe_keys_are_scoped_to_one_execution(self, store: LedgerStore) -> None:
        """The same `dedupe_key` on two executions writes one event on each."""
        a, b = _new(store).id, _new(store).id
        ea = store.append_event(a, EventType.STAGE_STARTED, {}, dedupe_key="stage:x")
        eb = store.append_event(b, EventType.STAGE_STARTED, {}, dedupe_key="stage:x")
        assert ea.execution_id == a and eb.execution_id == b
        assert len(store.list_events(a)) == 2 and len(store.list_events(b)) == 2

    # ---- claim_next ----------------------------------------------------------------------------

    def test_claim_next_returns_none_when_nothing_is_queued(self, store: LedgerStore) -> None:
        """Empty store, or only pending/running work: nothing to claim."""
        assert store.claim_next("w") is None
        _new(store)
        running = _new(store).id
        store.transition(running, S.RUNNING)
        assert store.claim_next("w") is None

    def test_claim_next_takes_the_oldest_queued(self, store: LedgerStore) -> None:
        """Oldest first; the claim moves it to running for that worker with one event."""
        ids = [_new(store, f"q.{i}").id for i in range(3)]
        for execution_id in ids:
            store.transition(execution_id, S.QUEUED)
        claimed = []
        while (execution := store.claim_next("worker-1")) is not None:
            assert execution.status is S.RUNNING
            assert execution.worker_id == "worker-1"
            assert execution.started_at is not None
            claimed.append(execution.id)
        assert claimed == ids
        for execution_id in ids:
            events = store.list_events(execution_id)
            assert [e.event_type for e in events] == [
                EventType.CREATED,
                EventType.QUEUED,
                EventType.STARTED,
            ]
            assert store.get_execution(execution_id).status is S.RUNNING

    def test_claim_next_respects_lanes(self, store: LedgerStore) -> None:
        """Only executions in the worker's lanes are claimed."""
        normal = _new(store, lane=Lane.NORMAL).id
        backfill = _new(store, lane=Lane.BACKFILL).id
        for execution_id in (normal, backfill):
            store.transition(execution_id, S.QUEUED)
        assert store.claim_next("w", lanes=(Lane.SLOW,)) is None
        got = store.claim_next("w", lanes=(Lane.BACKFILL, Lane.SLOW))
        assert got is not None and got.id == backfill
        got = store.claim_next("w")
        assert got is not None and got.id == normal
        assert store.claim_next("w") is None

    def test_concurrent_claims_take_each_execution_once(self, store: LedgerStore) -> None:
        """Racing workers claim every queued execution exactly once."""
        ids = [_new(store, "race.job").id for _ in range(self.race_executions)]
        for execution_id in ids:
            store.transition(execution_id, S.QUEUED)
        claimed: list[list[str]] = [[] for _ in range(self.race_threads)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(self.race_threads)

        def worker(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                while (execution := store.claim_next(f"worker-{n}")) is not None:
                    claimed[n].append(execution.id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(self.race_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        flat = [execution_id for got in claimed for execution_id in got]
        assert sorted(flat) == sorted(ids), "some execution was claimed twice or never"
        for execution_id in ids:
            events = store.list_events(execution_id)
            assert [e.event_type for e in events].count(EventType.STARTED) == 1
            assert store.get_execution(execution_id).status is S.RUNNING

    def test_racing_the_same_transition_lets_exactly_one_win(self, store: LedgerStore) -> None:
        """Of many threads moving one execution queued -> running, one succeeds."""
        execution_id = _new(store).id
        store.transition(execution_id, S.QUEUED)
        wins: list[str] = []
        refusals: list[str] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(self.race_threads)

        def contender(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                store.transition(execution_id, S.RUNNING, worker_id=f"w-{n}")
                wins.append(f"w-{n}")
            except IllegalTransition:
                refusals.append(f"w-{n}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=contender, args=(n,)) for n in range(self.race_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(wins) == 1 and len(refusals) == self.race_threads - 1
        events = store.list_events(execution_id)
        assert [e.event_type for e in events].count(EventType.STARTED) == 1
        assert store.get_execution(execution_id).worker_id == wins[0]

    # ---- counts --------------------------------------------------------------------------------

    def test_status_reports_schema_version_and_table_counts(self, store: LedgerStore) -> None:
        """`spine status` reads these: an integer version and the executions/events counts."""
        assert isinstance(store.schema_version(), int) and store.schema_version() >= 0
        first = _new(store)
        _new(store)
        store.transition(first.id, S.QUEUED)
        counts = store.table_counts()
        assert counts["executions"] == 2
        assert counts["execution_events"] == 3

    def test_count_by_status(self, store: LedgerStore) -> None:
        """Counts per status value (statuses with no executions may be absent or 0)."""
        assert {k: v for k, v in store.count_by_status().items() if v} == {}
        ids = [_new(store).id for _ in range(6)]
        store.transition(ids[0], S.QUEUED)
        store.transition(ids[1], S.QUEUED)
        _drive(store, ids[2], S.COMPLETED)
        _drive(store, ids[3], S.FAILED)
        _drive(store, ids[4], S.DEAD_LETTERED)
        counts = {str(k): v for k, v in store.count_by_status().items() if v}
        assert counts == {
            "pending": 1,
            "queued": 2,
            "completed": 1,
            "failed": 1,
            "dead_lettered": 1,
        }

    # ---- random sequences ----------------------------------------------------------------------

    @settings(
        max_examples=40,
        deadline=None,
        # One store serves every example (each makes its own execution), and several
        # subclasses in one session share this method: both are intended.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
            HealthCheck.too_slow,
        ],
    )
    @given(targets=transition_attempts())
    def test_random_transition_sequences_follow_the_state_machine(
        self, store: LedgerStore, targets: list[ExecutionStatus]
    ) -> None:
        """Random attempts: legal ones change status with one event, illegal ones nothing."""
        check_transition_sequence(store, targets)

    # ---- run history (optional) ----------------------------------------------------------------

    def _history(self, store: LedgerStore) -> RunHistoryStore:
        if not isinstance(store, RunHistoryStore):
            pytest.skip(f"{type(store).__name__} does not implement RunHistoryStore")
        return store

    def test_run_history_records_a_run_and_its_steps(self, store: LedgerStore) -> None:
        """Run row first (closed with status and error), then step rows in finishing order."""
        history = self._history(store)
        execution_id = _new(store).id
        started = utcnow()
        history.record(
            [RunStarted("run-1", execution_id, "otc.daily", 2, {"date": "2024-03-05"}, started)]
        )
        head = history.get_run("run-1")
        assert len(head) == 1 and head[0].step is None and head[0].finished_at is None
        base = head[0].started_at
        steps = [
            StepRunRecord(
                run_id="run-1",
                execution_id=execution_id,
                workflow="otc.daily",
                version=2,
                step=name,
                kind="pipeline",
                status=status,
                started_at=base,
                finished_at=base + timedelta(milliseconds=5),
                duration_ms=5.0,
                error=error,
                category=category,
                detail={"quality": {"record_count": 3}, "note": "ü✓"},
            )
            for name, status, error, category in (
                ("ingest", "ok", None, None),
                ("metrics", "failed", "gate 'min valid_rate' failed", "DATA_QUALITY"),
            )
        ]
        finished = RunFinished("run-1", "failed", "step 'metrics' failed", utcnow())
        history.record([*steps, finished])
        rows = history.get_run("run-1")
        assert [r.step for r in rows] == [None, "ingest", "metrics"]
        run = rows[0]
        assert run.run_id == "run-1" and run.execution_id == execution_id
        assert run.workflow == "otc.daily" and run.version == 2
        assert run.status == "failed" and run.error == "step 'metrics' failed"
        assert run.finished_at is not None and run.finished_at >= run.started_at
        for got, want in zip(rows[1:], steps, strict=True):
            assert (got.status, got.kind, got.error, got.category) == (
                want.status,
                want.kind,
                want.error,
                want.category,
            )
            assert got.detail == want.detail
            assert got.duration_ms == pytest.approx(want.duration_ms)
            assert _close_to(got.started_at, want.started_at)
            assert _close_to(got.finished_at, want.finished_at)

    def test_list_runs_newest_first_with_filter_and_limit(self, store: LedgerStore) -> None:
        """Run rows only, newest first; `workflow` filters and `limit` caps."""
        history = self._history(store)
        base = utcnow()
        history.record(
            [
                RunStarted(
                    f"r{i}",
                    None,
                    "wf.a" if i % 2 == 0 else "wf.b",
                    1,
                    {},
                    base + timedelta(milliseconds=5 * i),
                )
                for i in range(4)
            ]
        )
        history.record([RunFinished("r0", "completed", None, base + timedelta(seconds=1))])
        runs = history.list_runs()
        assert [r.run_id for r in runs] == ["r3", "r2", "r1", "r0"]
        assert all(r.step is None for r in runs)
        assert [r.run_id for r in history.list_runs(workflow="wf.a")] == ["r2", "r0"]
        assert [r.run_id for r in history.list_runs(limit=2)] == ["r3", "r2"]
        assert history.list_runs(workflow="wf.none") == []
