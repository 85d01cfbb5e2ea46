"""The conformance suite every `DeadLetterStore` runs (in-memory, PostgreSQL).

Subclass `DeadLetterStoreConformance` and provide `ledger` (a fresh `LedgerStore`) and
`letters` (the `DeadLetterStore` over it; often the same object)::

    class TestMemoryDeadLetters(DeadLetterStoreConformance):
        @pytest.fixture
        def ledger(self):
            return InMemoryLedgerStore()

        @pytest.fixture
        def letters(self, ledger):
            return ledger
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from spine_core.dead_letters import (
    RETRIES_EXHAUSTED,
    DeadLetterClosed,
    DeadLetterNotFound,
    DeadLetterStore,
)
from spine_core.errors import ExecutionNotFound, IllegalTransition
from spine_core.events import EventType
from spine_core.execution import Execution, ExecutionFilter, NewExecution
from spine_core.ports import LedgerStore
from spine_core.status import ExecutionStatus

S = ExecutionStatus


def _failed(ledger: LedgerStore, error: str = "step 'two' failed: boom") -> Execution:
    execution = ledger.create_execution(NewExecution(name="wf", status=S.QUEUED))
    ledger.transition(execution.id, S.RUNNING, worker_id="w1")
    return ledger.transition(execution.id, S.FAILED, error=error, error_category="user_code")


def _retry_of(ledger: LedgerStore, letter: Any) -> Execution:
    """What `Dispatcher.retry` does, reduced to the ledger write."""
    return ledger.create_execution(
        NewExecution(name="wf", parent_execution_id=letter.execution_id, status=S.QUEUED)
    )


def _slow_retry(ledger: LedgerStore, letter: Any) -> Execution:
    time.sleep(0.05)  # long enough for the other threads to be waiting on the record
    return _retry_of(ledger, letter)


class DeadLetterStoreConformance:
    """The dead-letter contract."""

    @pytest.fixture
    def ledger(self) -> LedgerStore:
        """A fresh, empty ledger."""
        raise NotImplementedError("provide a `ledger` fixture")

    @pytest.fixture
    def letters(self, ledger: LedgerStore) -> DeadLetterStore:
        """The dead-letter store over `ledger`."""
        raise NotImplementedError("provide a `letters` fixture")

    def test_a_failed_execution_moves_with_its_record(self, ledger, letters) -> None:
        """Status, event and record: reason, last error, category and attempts."""
        execution = _failed(ledger)
        letter = letters.dead_letter(execution.id, reason=RETRIES_EXHAUSTED, attempts=2)
        assert letter.execution_id == execution.id
        assert (letter.reason, letter.attempts) == (RETRIES_EXHAUSTED, 2)
        assert letter.error == "step 'two' failed: boom"
        assert letter.error_category == "user_code"
        assert letter.is_open and letter.retried_as is None and letter.discarded_at is None
        assert ledger.get_execution(execution.id).status is S.DEAD_LETTERED
        last = ledger.list_events(execution.id)[-1]
        assert last.event_type is EventType.DEAD_LETTERED
        assert last.payload["reason"] == RETRIES_EXHAUSTED
        assert last.payload["attempts"] == last.payload["attempt"] == 2
        assert letters.get_dead_letter(letter.id) == letter

    @pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.COMPLETED])
    def test_only_a_failed_execution_is_dead_lettered(self, ledger, letters, status) -> None:
        """Anything else: `IllegalTransition`, and neither the row nor the records change."""
        execution = ledger.create_execution(NewExecution(name="wf", status=S.QUEUED))
        if status is not S.QUEUED:
            ledger.transition(execution.id, S.RUNNING, worker_id="w1")
        if status is S.COMPLETED:
            ledger.transition(execution.id, S.COMPLETED)
        with pytest.raises(IllegalTransition):
            letters.dead_letter(execution.id, reason=RETRIES_EXHAUSTED, attempts=1)
        assert ledger.get_execution(execution.id).status is status
        assert letters.list_dead_letters() == []

    def test_twice_is_refused(self, ledger, letters) -> None:
        """A dead-lettered execution is terminal: one record per execution."""
        execution = _failed(ledger)
        letters.dead_letter(execution.id, reason=RETRIES_EXHAUSTED, attempts=1)
        with pytest.raises(IllegalTransition):
            letters.dead_letter(execution.id, reason=RETRIES_EXHAUSTED, attempts=1)
        assert letters.count_dead_letters(open_only=False) == 1

    def test_unknown_ids(self, ledger, letters) -> None:
        """An unknown execution or dead letter is named in the error."""
        with pytest.raises(ExecutionNotFound):
            letters.dead_letter("nope", reason=RETRIES_EXHAUSTED, attempts=1)
        for call in (
            letters.get_dead_letter,
            letters.discard,
            lambda i: letters.retry_with(i, lambda letter: pytest.fail("submitted")),
        ):
            with pytest.raises(DeadLetterNotFound, match="nope"):
                call("nope")

    def test_listing_is_newest_first_and_pages(self, ledger, letters) -> None:
        """`before_id` continues where the last page ended; `open_only` hides closed ones."""
        made = [
            letters.dead_letter(_failed(ledger).id, reason=RETRIES_EXHAUSTED, attempts=1)
            for _ in range(5)
        ]
        newest_first = [d.id for d in reversed(made)]
        first = letters.list_dead_letters(limit=2)
        assert [d.id for d in first] == newest_first[:2]
        rest = letters.list_dead_letters(before_id=first[-1].id, limit=10)
        assert [d.id for d in rest] == newest_first[2:]
        letters.discard(made[0].id)
        assert made[0].id not in [d.id for d in letters.list_dead_letters(open_only=True)]
        assert len(letters.list_dead_letters()) == 5

    def test_retry_closes_it_once(self, ledger, letters) -> None:
        """Retried, it names the retry; a second retry (not submitted) or a discard is refused."""
        dead = _failed(ledger)
        letter = letters.dead_letter(dead.id, reason=RETRIES_EXHAUSTED, attempts=3)
        retry = letters.retry_with(letter.id, lambda held: _retry_of(ledger, held))
        assert retry.parent_execution_id == dead.id
        closed = letters.get_dead_letter(letter.id)
        assert closed.retried_as == retry.id and not closed.is_open
        with pytest.raises(DeadLetterClosed, match=retry.id):
            letters.retry_with(letter.id, lambda held: pytest.fail("submitted twice"))
        with pytest.raises(DeadLetterClosed, match=retry.id):
            letters.discard(letter.id)
        assert letters.get_dead_letter(letter.id).retried_as == retry.id

    def test_a_submit_that_fails_leaves_it_open(self, ledger, letters) -> None:
        """Nothing was retried, so nothing is closed."""
        letter = letters.dead_letter(_failed(ledger).id, reason=RETRIES_EXHAUSTED, attempts=1)

        def refuse(held):
            raise RuntimeError("backend down")

        with pytest.raises(RuntimeError, match="backend down"):
            letters.retry_with(letter.id, refuse)
        assert letters.get_dead_letter(letter.id).is_open

    def test_concurrent_retries_submit_exactly_once(self, ledger, letters) -> None:
        """Eight threads retry one dead letter: one new execution, seven refusals naming it."""
        dead = _failed(ledger)
        letter = letters.dead_letter(dead.id, reason=RETRIES_EXHAUSTED, attempts=1)
        results: list[Any] = []
        start = threading.Barrier(8)

        def retry() -> None:
            start.wait()
            try:
                results.append(
                    letters.retry_with(letter.id, lambda held: _slow_retry(ledger, held))
                )
            except DeadLetterClosed as exc:
                results.append(exc)

        threads = [threading.Thread(target=retry) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        [made] = [r for r in results if not isinstance(r, DeadLetterClosed)]
        refused = [r for r in results if isinstance(r, DeadLetterClosed)]
        assert len(refused) == 7 and all(made.id in str(r) for r in refused)
        children = ledger.list_executions(ExecutionFilter(parent_execution_id=dead.id))
        assert [c.id for c in children] == [made.id]

    def test_discard_closes_it(self, ledger, letters) -> None:
        """Discarded: kept, closed, never retried."""
        letter = letters.dead_letter(_failed(ledger).id, reason=RETRIES_EXHAUSTED, attempts=1)
        discarded = letters.discard(letter.id)
        assert discarded.discarded_at is not None and discarded.retried_as is None
        with pytest.raises(DeadLetterClosed, match="discarded"):
            letters.retry_with(letter.id, lambda held: pytest.fail("submitted"))

    def test_counts(self, ledger, letters) -> None:
        """Open ones by default; all with `open_only=False`."""
        assert letters.count_dead_letters() == 0
        one = letters.dead_letter(_failed(ledger).id, reason=RETRIES_EXHAUSTED, attempts=1)
        letters.dead_letter(_failed(ledger).id, reason=RETRIES_EXHAUSTED, attempts=1)
        letters.discard(one.id)
        assert letters.count_dead_letters() == 1
        assert letters.count_dead_letters(open_only=False) == 2
