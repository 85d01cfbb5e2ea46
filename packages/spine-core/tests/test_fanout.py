"""Map and sub-workflow steps as child executions, run by claiming workers on the memory store."""

from __future__ import annotations

import threading

import pytest

from spine_core.capabilities import Capability
from spine_core.dispatcher import Dispatcher
from spine_core.errors import UnknownWorkflowVersion, WorkflowDefinitionError
from spine_core.execution import Execution, TriggerSource
from spine_core.memory import InMemoryLedgerStore
from spine_core.registry import Registry
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus as S
from spine_core.status import is_terminal
from spine_core.workflow import Step, Workflow

ALL = frozenset(Capability)


class LedgerQueue:
    """A backend whose work waits in the ledger, for `drain` to claim."""

    name = "queue"
    creates_as = S.QUEUED

    def submit(self, execution_id: str) -> None:
        return None

    def cancel(self, execution_id: str) -> None:
        """Workers see `cancelling` at the next step boundary."""

    def health(self):  # pragma: no cover - not used here
        raise NotImplementedError

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""


def make(registry: Registry, store: InMemoryLedgerStore | None = None):
    store = store or InMemoryLedgerStore()
    runner = ExecutionRunner(store, registry, ALL, "t", fanout=store)
    return store, runner, Dispatcher(store, LedgerQueue(), registry, ALL, "t", fanout=store)


def drain(store, runner, parent_id: str, *, limit: int = 10_000) -> Execution:
    """Claim and advance whatever is due, as workers would, until the parent has ended."""
    for _ in range(limit):
        row = store.get_execution(parent_id)
        if is_terminal(row.status):
            return row
        claimed = store.claim_next("worker")
        assert claimed is not None, f"nothing claimable while {parent_id} is {row.status}"
        runner.advance(claimed.id, claimed=claimed)
    raise AssertionError("the run did not end")


def squares(max_concurrency: int = 2, **kwargs) -> Workflow:
    return Workflow(
        "squares",
        (
            Step.lambda_("items", lambda ctx: list(range(ctx.params["n"]))),
            Step.map(
                "each",
                lambda ctx: ctx.outputs["items"],
                Step.lambda_("square", lambda ctx: ctx.params["item"] ** 2),
                max_concurrency,
                **kwargs,
            ),
            Step.lambda_("total", lambda ctx: sum(ctx.outputs["each"])),
        ),
    )


def test_each_item_is_a_child_execution_and_outputs_come_in_item_order():
    registry = Registry(load_entry_points=False)
    registry.add(squares())
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("squares", {"n": 7})
    done = drain(store, runner, parent.id)
    assert done.status is S.COMPLETED, done.error
    assert done.result["outputs"]["each"] == [i * i for i in range(7)]
    assert done.result["outputs"]["total"] == sum(i * i for i in range(7))
    children = store.list_children(parent.id)
    assert len(children) == 7
    assert {c.name for c in children} == {"squares@1/each"}
    assert all(c.trigger_source is TriggerSource.WORKFLOW for c in children)
    assert [c.params["item"] for c in children] == list(range(7))


def test_no_more_than_max_concurrency_children_run_at_once():
    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    def body(ctx):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        with lock:
            running["now"] -= 1
        return ctx.params["item"]

    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", list(range(9)), Step.lambda_("b", body), 3),)))
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("m")
    seen_active = []
    for _ in range(100):
        if is_terminal(store.get_execution(parent.id).status):
            break
        active = [c for c in store.list_children(parent.id) if c.status in (S.QUEUED, S.RUNNING)]
        seen_active.append(len(active))
        claimed = store.claim_next("w")
        runner.advance(claimed.id, claimed=claimed)
    assert store.get_execution(parent.id).status is S.COMPLETED
    assert max(seen_active) == 3


def test_a_failed_child_fails_the_map_naming_it_and_stops_the_rest():
    def body(ctx):
        if ctx.params["item"] == 2:
            raise RuntimeError("bad item")
        return ctx.params["item"]

    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", list(range(6)), Step.lambda_("b", body), 1),)))
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("m")
    done = drain(store, runner, parent.id)
    assert done.status is S.FAILED
    failed = store.list_children(parent.id)[2]
    assert f"item 2 (execution {failed.id} failed" in done.error and "bad item" in done.error
    statuses = [c.status for c in store.list_children(parent.id)]
    assert statuses == [S.COMPLETED, S.COMPLETED, S.FAILED, S.CANCELLED, S.CANCELLED, S.CANCELLED]


def test_collect_keeps_going_and_puts_each_failure_in_its_place():
    def body(ctx):
        if ctx.params["item"] % 2:
            raise RuntimeError(f"odd {ctx.params['item']}")
        return ctx.params["item"]

    registry = Registry(load_entry_points=False)
    registry.add(
        Workflow(
            "m",
            (Step.map("each", [0, 1, 2, 3], Step.lambda_("b", body), 2, on_failure="collect"),),
        )
    )
    store, runner, dispatcher = make(registry)
    done = drain(store, runner, dispatcher.submit("m").id)
    assert done.status is S.COMPLETED
    out = done.result["outputs"]["each"]
    assert out[0] == 0 and out[2] == 2
    assert out[1]["status"] == "failed" and "odd 1" in out[1]["error"]


def test_a_workflow_body_gives_each_item_its_outputs():
    body = Workflow(
        "per_item",
        (
            Step.lambda_("double", lambda ctx: ctx.params["item"] * 2),
            Step.lambda_("plus", lambda ctx: ctx.outputs["double"] + 1),
        ),
    )
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", [1, 2], body),)))
    store, runner, dispatcher = make(registry)
    done = drain(store, runner, dispatcher.submit("m").id)
    assert done.result["outputs"]["each"] == [{"double": 2, "plus": 3}, {"double": 4, "plus": 5}]


def test_a_sub_workflow_is_one_child_execution():
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("inner", (Step.lambda_("x", lambda ctx: ctx.params["v"] + 1),)))
    registry.add(
        Workflow(
            "outer",
            (
                Step.workflow("sub", "inner", params=lambda ctx: {"v": ctx.params["v"]}),
                Step.lambda_("after", lambda ctx: ctx.outputs["sub"]["x"] * 10),
            ),
        )
    )
    store, runner, dispatcher = make(registry)
    done = drain(store, runner, dispatcher.submit("outer", {"v": 4}).id)
    assert done.status is S.COMPLETED, done.error
    assert done.result["outputs"] == {"sub": {"x": 5}, "after": 50}
    (child,) = store.list_children(done.id)
    assert child.name == "inner" and child.status is S.COMPLETED


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (lambda ctx: 42, "items must be iterable, got int"),
        (lambda ctx: [1, {2}], "item 1 ({2}) is not JSON"),
    ],
)
def test_bad_items_fail_the_map_step_naming_the_item(items, message):
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", items, Step.lambda_("b", lambda c: 1)),)))
    store, runner, dispatcher = make(registry)
    done = drain(store, runner, dispatcher.submit("m").id)
    assert done.status is S.FAILED and message in done.error
    assert done.error_category == "VALIDATION"
    assert store.list_children(done.id) == []


def test_an_empty_map_completes_without_children():
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", [], Step.lambda_("b", lambda c: 1)),)))
    store, runner, dispatcher = make(registry)
    done = drain(store, runner, dispatcher.submit("m").id)
    assert done.status is S.COMPLETED and done.result["outputs"]["each"] == []


def test_a_map_of_ten_thousand_items_holds_no_thread_and_no_worker():
    registry = Registry(load_entry_points=False)
    registry.add(
        Workflow("big", (Step.map("each", list(range(10_000)), Step.lambda_("b", lambda c: 1)),))
    )
    store, runner, dispatcher = make(registry)
    threads = threading.active_count()
    parent = dispatcher.submit("big")
    row = runner.advance(parent.id, claimed=store.claim_next("w"))
    assert threading.active_count() == threads
    assert row.status is S.QUEUED  # waiting, on no worker
    statuses = [c.status for c in store.list_children(parent.id)]
    assert len(statuses) == 10_000 and statuses.count(S.QUEUED) == 4


def test_cancelling_a_waiting_parent_cancels_its_children():
    registry = Registry(load_entry_points=False)
    registry.add(squares(max_concurrency=2))
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("squares", {"n": 5})
    while not store.list_children(parent.id):
        claimed = store.claim_next("w")
        runner.advance(claimed.id, claimed=claimed)
    first = store.claim_next("w")  # a child is running when the cancel comes
    assert first.parent_execution_id == parent.id
    cancelled = dispatcher.cancel(parent.id)
    assert cancelled.status is S.CANCELLED
    statuses = [c.status for c in store.list_children(parent.id)]
    assert statuses == [S.CANCELLING, *[S.CANCELLED] * 4]
    # Its one step was already under way: it ends there, at its step boundary.
    assert is_terminal(runner.advance(first.id, claimed=first).status)
    assert store.get_execution(parent.id).status is S.CANCELLED


def test_a_child_cancelled_alone_wakes_its_parent():
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", [1], Step.lambda_("b", lambda c: 1)),)))
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("m")
    runner.advance(parent.id, claimed=store.claim_next("w"))
    (child,) = store.list_children(parent.id)
    dispatcher.cancel(child.id)
    done = drain(store, runner, parent.id)
    assert done.status is S.FAILED and "cancelled" in done.error


def test_a_run_keeps_its_version_after_a_newer_one_is_registered():
    def version(n: int) -> Workflow:
        return Workflow(
            "v",
            (
                Step.map("each", [1, 2], Step.lambda_("b", lambda ctx, n=n: n)),
                Step.lambda_("which", lambda ctx, n=n: n),
            ),
            version=n,
        )

    registry = Registry(load_entry_points=False)
    registry.add(version(1))
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("v")
    runner.advance(parent.id, claimed=store.claim_next("w"))
    registry.add(version(2))
    assert registry.versions("v") == [1, 2]
    done = drain(store, runner, parent.id)
    assert done.result["outputs"] == {"each": [1, 1], "which": 1}
    assert done.result["version"] == 1
    assert drain(store, runner, dispatcher.submit("v").id).result["outputs"]["which"] == 2


def test_a_pinned_version_that_is_gone_fails_naming_it():
    registry = Registry(load_entry_points=False)
    wf = Workflow("v", (Step.map("each", [1], Step.lambda_("b", lambda c: 1)),), version=1)
    registry.add(wf)
    store, runner, dispatcher = make(registry)
    parent = dispatcher.submit("v")
    runner.advance(parent.id, claimed=store.claim_next("w"))
    newer = Registry(load_entry_points=False)
    newer.add(Workflow("v", wf.steps, version=2))
    _, new_runner, _ = make(newer, store)
    done = drain(store, new_runner, parent.id)
    assert done.status is S.FAILED
    assert "'v' version 1 is not registered (registered: 2)" in done.error
    with pytest.raises(UnknownWorkflowVersion):
        newer.resolve("v", 1)


def test_one_version_is_registered_once():
    registry = Registry(load_entry_points=False)
    registry.add(Workflow("v", (Step.lambda_("a", lambda c: 1),)))
    with pytest.raises(WorkflowDefinitionError, match="'v' version 1 is already registered"):
        registry.add(Workflow("v", (Step.lambda_("a", lambda c: 2),)))


def test_a_resumed_map_runs_its_items_again_as_new_children():
    """The failed round's children stay linked to the parent; the new round's outputs count."""
    from spine_core.capabilities import capabilities_up_to

    seen = {"failed_once": False}

    def body(ctx):
        if ctx.params["item"] == 1 and not seen["failed_once"]:
            seen["failed_once"] = True
            raise RuntimeError("flaky item")
        return ctx.params["item"] * 10

    registry = Registry(load_entry_points=False)
    registry.add(Workflow("m", (Step.map("each", [0, 1, 2], Step.lambda_("b", body), 3),)))
    store, runner, dispatcher = make(registry)
    failed = drain(store, runner, dispatcher.submit("m").id)
    assert failed.status is S.FAILED and "flaky item" in failed.error
    advanced = Dispatcher(
        store,
        LedgerQueue(),
        registry,
        capabilities_up_to("market-spine-advanced"),
        "t",
        fanout=store,
    )
    advanced.resume(failed.id)
    done = drain(store, runner, failed.id)
    assert done.status is S.COMPLETED, done.error
    assert done.result["outputs"]["each"] == [0, 10, 20]
    assert len(store.list_children(failed.id)) == 6
