"""The advanced tier's API router: execution events and cancel.

Mounted by `create_app` through `Tier.extend_api` before the 501 answers for endpoints that no
installed tier serves, so these routes are never shadowed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from spine_core.tier import Runtime
from spine_intermediate.api.models import ExecutionOut

router = APIRouter(tags=["executions"])


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


@router.get(
    "/executions/{execution_id}/events",
    response_model=EventList,
    summary="An execution's events (created, queued, started, ... with their payloads)",
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


@router.post(
    "/executions/{execution_id}/cancel",
    response_model=ExecutionOut,
    status_code=202,
    summary="Cancel: queued at once, running at its next step boundary",
)
def cancel(execution_id: str, request: Request) -> ExecutionOut:
    """404 for an unknown execution; 409 naming the status of a terminal one."""
    return ExecutionOut.of(_runtime(request).dispatcher.cancel(execution_id))


def extend_api(app: FastAPI) -> None:
    """Mount the advanced tier's routes."""
    app.include_router(router)
