from __future__ import annotations

import threading

import pytest

from spine_core import (
    ExecutionFilter,
    ExecutionNotFound,
    ExecutionStatus,
    IllegalTransition,
    NewExecution,
)
from spine_core.errors import ConfigurationError
from spine_core.events import EventType
from spine_intermediate.pg import PostgresLedgerStore
from spine_intermediate.pg.connect import PgDatabase
from spine_intermediate.pg.migrations import MIGRATIONS, migrate
from spine_intermediate.workers import WorkerLedger

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url):
    s = PostgresLedgerStore.open(pg_url, min_size=1, max_size=8)
    yield s
    s.close()


def test_create_get_events(store):
    e = store.create_execution(NewExecution(name="x", params={"a": 1}))
    assert store.get_execution(e.id).params == {"a": 1}
    store.transition(e.id, ExecutionStatus.QUEUED)
    claimed = store.claim_next("w1")
    assert (
        claimed.id == e.id
        and claimed.status is ExecutionStatus.RUNNING
        and claimed.worker_id == "w1"
    )
    done = store.transition(e.id, ExecutionStatus.COMPLETED, result={"ok": True})
    assert done.result == {"ok": True} and done.finished_at is not None
    types = [ev.event_type for ev in store.list_events(e.id)]
    assert types == [EventType.CREATED, EventType.QUEUED, EventType.STARTED, EventType.COMPLETED]
    with pytest.raises(IllegalTransition):
        store.transition(e.id, ExecutionStatus.RUNNING)
    with pytest.raises(ExecutionNotFound):
        store.get_execution("nope")


def test_dedupe_and_listing(store):
    ids = [store.create_execution(NewExecution(name=f"p{i % 2}")).id for i in range(5)]
    a = store.append_event(ids[0], EventType.STAGE_STARTED, {"s": 1}, dedupe_key="k")
    b = store.append_event(ids[0], EventType.STAGE_STARTED, {"s": 2}, dedupe_key="k")
    assert a.seq == b.seq == 2 and b.payload == {"s": 1}
    page = store.list_executions(ExecutionFilter(limit=2))
    assert [e.id for e in page] == ids[::-1][:2]
    nxt = store.list_executions(ExecutionFilter(limit=10, before_id=page[-1].id))
    assert [e.id for e in nxt] == ids[::-1][2:]
    assert len(store.list_executions(ExecutionFilter(name="p0"))) == 3
    assert store.count_by_status() == {"pending": 5}


def test_racing_claims_take_each_execution_once(store):
    ids = [store.create_execution(NewExecution(name="x")).id for _ in range(40)]
    for i in ids:
        store.transition(i, ExecutionStatus.QUEUED)
    got: list[str] = []
    lock = threading.Lock()

    def worker(n):
        while (e := store.claim_next(f"w{n}")) is not None:
            with lock:
                got.append(e.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_racing_transitions_only_one_wins(store):
    e = store.create_execution(NewExecution(name="x"))
    store.transition(e.id, ExecutionStatus.QUEUED)
    wins, losses = [], []

    def go():
        try:
            store.transition(e.id, ExecutionStatus.RUNNING, worker_id="w")
            wins.append(1)
        except IllegalTransition:
            losses.append(1)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert [ev.seq for ev in store.list_events(e.id)] == [1, 2, 3]


def test_events_racing_a_status_change_keep_one_gapless_sequence(store):
    """Stage events appended while another thread moves the row never collide on seq."""
    e = store.create_execution(NewExecution(name="x", status=ExecutionStatus.QUEUED))
    store.claim(e.id, "w")
    errors = []

    def append(n):
        try:
            for i in range(10):
                store.append_event(e.id, EventType.STAGE_STARTED, {"n": n, "i": i})
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    store.transition(e.id, ExecutionStatus.CANCELLING)
    store.transition(e.id, ExecutionStatus.CANCELLED)
    for t in threads:
        t.join()
    assert errors == []
    events = store.list_events(e.id)
    assert [ev.seq for ev in events] == list(range(1, len(events) + 1))
    assert len(events) == 3 + 40 + 2


def test_upgrading_keeps_the_event_sequence_of_existing_executions(empty_pg_url):
    """Executions created before the ledger kept `last_seq` continue their seq after migrating."""
    db = PgDatabase.connect(empty_pg_url)
    try:

        async def before_last_seq():
            async with db.pool.acquire() as conn:
                await migrate(conn, MIGRATIONS[:3])
                await conn.execute(
                    "INSERT INTO executions (id, name, status, backend, created_at, updated_at) "
                    "VALUES ('old', 'x', 'queued', 'local', now(), now())"
                )
                await conn.execute(
                    "INSERT INTO execution_events (execution_id, seq, event_type, created_at) "
                    "VALUES ('old', 1, 'created', now()), ('old', 2, 'queued', now())"
                )
                await migrate(conn)

        db.call(before_last_seq())
    finally:
        db.close()
    store = PostgresLedgerStore.open(empty_pg_url)
    try:
        assert store.claim("old", "w").status is ExecutionStatus.RUNNING
        events = store.list_events("old")
        assert [(ev.seq, ev.event_type) for ev in events][-1] == (3, EventType.STARTED)
    finally:
        store.close()


def test_schema_behind_is_refused(empty_pg_url):
    with pytest.raises(
        ConfigurationError, match=r"schema is at 0, code needs \d+: run spine db init"
    ):
        PostgresLedgerStore.open(empty_pg_url)


def test_unreachable_message_has_no_password():
    with pytest.raises(ConfigurationError) as info:
        PostgresLedgerStore.open("postgresql://bob:s3cretpw@127.0.0.1:1/spine")
    message = str(info.value)
    assert "cannot reach PostgreSQL at 127.0.0.1:1/spine" in message
    assert "s3cretpw" not in message


def test_postgres_ledger_keeps_worker_bookkeeping(store):
    """LocalBackend finds heartbeats and lease requeueing on the PostgreSQL ledger."""
    assert isinstance(store, WorkerLedger)
