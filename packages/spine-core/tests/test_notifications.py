from __future__ import annotations

import threading
import time

from spine_core.execution import NewExecution
from spine_core.memory import InMemoryLedgerStore
from spine_core.notifications import LedgerNotifications, NotificationHub
from spine_core.status import ExecutionStatus


def test_an_announcement_made_before_the_wait_is_not_missed():
    hub = NotificationHub()
    hub.finished("a")
    started = time.monotonic()
    assert hub.wait_for("a", 5) is True
    assert time.monotonic() - started < 1
    assert hub.wait_for("b", 0.05) is False


def test_a_waiter_wakes_when_another_thread_announces():
    hub = NotificationHub()
    threading.Timer(0.05, hub.finished, args=("x",)).start()
    started = time.monotonic()
    assert hub.wait_for("x", 5) is True
    assert time.monotonic() - started < 2


def test_work_wakes_waiters_and_listeners():
    hub = NotificationHub()
    woken = []
    hub.on_work(lambda: woken.append(1))
    assert hub.wait_for_work(0.02) is False
    threading.Timer(0.05, hub.work_available).start()
    assert hub.wait_for_work(5) is True
    assert woken == [1]


def test_only_the_latest_finished_ids_are_remembered():
    hub = NotificationHub(remember=2)
    for name in "abc":
        hub.finished(name)
    assert hub.wait_for("a", 0) is False
    assert hub.wait_for("c", 0) is True


def test_the_memory_store_announces_terminal_statuses_and_queued_work():
    store = InMemoryLedgerStore()
    assert isinstance(store.notifications, LedgerNotifications)
    work = threading.Event()
    store.notifications.on_work(work.set)
    execution = store.create_execution(NewExecution("n", status=ExecutionStatus.QUEUED))
    assert work.is_set()
    assert store.notifications.wait_for(execution.id, 0) is False
    store.transition(execution.id, ExecutionStatus.RUNNING)
    assert store.notifications.wait_for(execution.id, 0) is False
    store.transition(execution.id, ExecutionStatus.COMPLETED)
    assert store.notifications.wait_for(execution.id, 0) is True
