"""The advanced tier's API routers: execution events, cancel, dead letters, /health/metrics.

Mounted by `create_app` through `Tier.extend_api` before the 501 answers for endpoints that no
installed tier serves, so these routes are never shadowed. Reads and writes are two routers, so
each takes the app's guard for its kind (`SPINE_API_TOKEN`); health stays open.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from spine_advanced.settings import lease_settings
from spine_core.dead_letters import (
    DeadLetter,
    DeadLetterClosed,
    DeadLetterNotFound,
    DeadLetterStore,
    retry_dead_letter,
)
from spine_core.log_format import mask_secrets
from spine_core.tier import Runtime
from spine_intermediate.api.models import ErrorResponse, ExecutionOut
from spine_intermediate.api.paging import cursor_page
from spine_intermediate.api.queries import Text

reads = APIRouter()
writes = APIRouter()
health = APIRouter(tags=["health"])

_LETTER_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such dead letter"},
    409: {"model": ErrorResponse, "description": "Already retried (names the retry) or discarded"},
}


class EventOut(BaseModel):
    """One execution event, in `seq` order."""

    execution_id: str
    seq: int
    event_type: str
    created_at: datetime
    payload: dict[str, Any]


class EventList(BaseModel):
    """An execution's events, oldest first."""

    items: list[EventOut]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


class DeadLetterOut(BaseModel):
    """A dead-lettered execution: why, its last error, and what was done about it."""

    id: str
    execution_id: str
    reason: str
    error: str | None
    error_category: str | None
    attempts: int
    created_at: datetime
    retried_as: str | None
    discarded_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        """From core's record."""
        return cls(**asdict(letter))


class DeadLetterPage(BaseModel):
    """A page of dead letters, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[DeadLetterOut]
    next_cursor: str | None


class Metrics(BaseModel):
    """The ledger's operational state (the full tier adds the Prometheus format)."""

    executions_by_status: dict[str, int]
    queue_depth: dict[str, int]
    dead_letters: int
    live_workers: int
    oldest_queued_seconds: float | None
    stuck: dict[str, int]


def _letters(request: Request) -> DeadLetterStore:
    return _runtime(request).extras["dead_letters"]


@reads.get(
    "/executions/{execution_id}/events",
    response_model=EventList,
    summary="An execution's events (created, queued, started, ... with their payloads)",
    tags=["executions"],
)
def events(execution_id: str, request: Request) -> EventList:
    """404 for an unknown execution."""
    rows = _runtime(request).dispatcher.events(execution_id)
    return EventList(
        items=[
            EventOut(
                execution_id=e.execution_id,
                seq=e.seq,
                event_type=e.event_type.value,
                created_at=e.created_at,
                payload=dict(e.payload),
            )
            for e in rows
        ]
    )


@writes.post(
    "/executions/{execution_id}/cancel",
    response_model=ExecutionOut,
    status_code=202,
    summary="Cancel: queued at once, running at its next step boundary",
    tags=["executions"],
)
def cancel(execution_id: str, request: Request) -> ExecutionOut:
    """404 for an unknown execution; 409 naming the status of a terminal one."""
    return ExecutionOut.of(_runtime(request).dispatcher.cancel(execution_id))


@reads.get(
    "/dead-letters",
    response_model=DeadLetterPage,
    tags=["dead letters"],
    summary="Dead letters, newest first (each names its execution_id)",
)
def list_dead_letters(
    request: Request,
    open_only: Annotated[
        bool, Query(description="Only those not yet retried or discarded.")
    ] = False,
    cursor: Annotated[Text | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    """Pages like `GET /executions`."""
    rows = _letters(request).list_dead_letters(
        before_id=cursor, limit=limit + 1, open_only=open_only
    )
    shown, next_cursor = cursor_page(rows, limit)
    return DeadLetterPage(items=[DeadLetterOut.of(d) for d in shown], next_cursor=next_cursor)


@reads.get(
    "/dead-letters/{dead_letter_id}",
    response_model=DeadLetterOut,
    responses=_LETTER_ERRORS,
    tags=["dead letters"],
    summary="One dead letter",
)
def get_dead_letter(dead_letter_id: str, request: Request) -> DeadLetterOut:
    """404 for an unknown id."""
    return DeadLetterOut.of(_letters(request).get_dead_letter(dead_letter_id))


@writes.post(
    "/dead-letters/{dead_letter_id}/retry",
    response_model=ExecutionOut,
    status_code=202,
    responses=_LETTER_ERRORS,
    tags=["dead letters"],
    summary="Retry: a new execution whose parent is the dead one",
)
def retry(dead_letter_id: str, request: Request) -> ExecutionOut:
    """404 for an unknown id; 409 naming the retry if it was already retried."""
    runtime = _runtime(request)
    return ExecutionOut.of(retry_dead_letter(runtime.dispatcher, _letters(request), dead_letter_id))


@writes.post(
    "/dead-letters/{dead_letter_id}/discard",
    response_model=DeadLetterOut,
    responses=_LETTER_ERRORS,
    tags=["dead letters"],
    summary="Discard: close it without a retry (the record stays)",
)
def discard(dead_letter_id: str, request: Request) -> DeadLetterOut:
    """404 for an unknown id; 409 if it was already retried or discarded."""
    return DeadLetterOut.of(_letters(request).discard(dead_letter_id))


@health.get(
    "/health/metrics",
    response_model=Metrics,
    summary="Counts by status, queue depth per lane, dead letters, live workers, oldest wait",
)
def metrics(request: Request) -> Metrics:
    """One consistent read of the ledger."""
    from spine_advanced.pg.ops import snapshot

    runtime = _runtime(request)
    _, lease, grace = lease_settings(runtime.settings.options)
    db = runtime.extras["database"]

    async def read() -> Any:
        async with db.pool.acquire() as conn:
            return await snapshot(conn, lease_seconds=lease, grace=grace)

    return Metrics(**db.call(read()).to_dict())


def _error(status: int, code: str, exc: Exception) -> JSONResponse:
    message = mask_secrets(str(exc))
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _error(404, "not_found", exc)


async def _closed(request: Request, exc: Exception) -> JSONResponse:
    return _error(409, "dead_letter_closed", exc)


def extend_api(app: FastAPI) -> None:
    """Mount the advanced tier's routes, each router behind the app's guard for its kind."""
    guards = getattr(app.state, "guards", {})
    app.include_router(reads, dependencies=guards.get("reads", []))
    app.include_router(writes, dependencies=guards.get("writes", []))
    app.include_router(health)
    app.add_exception_handler(DeadLetterNotFound, _not_found)
    app.add_exception_handler(DeadLetterClosed, _closed)
