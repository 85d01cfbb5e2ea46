"""Request and response models of the HTTP API (they define the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spine_core.execution import Execution, Lane
from spine_core.status import ExecutionStatus


class SubmitRequest(BaseModel):
    """`POST /executions`: what to run."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        min_length=1, max_length=200, description="A registered pipeline or workflow."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Params for the pipeline.")
    logical_key: str | None = Field(
        default=None,
        max_length=200,
        description="Concurrency key (needs market-spine-advanced).",
    )
    lane: Lane = Field(default=Lane.NORMAL, description="Queue partition.")


class ExecutionOut(BaseModel):
    """One execution, as the ledger keeps it."""

    id: str
    name: str
    params: dict[str, Any]
    status: ExecutionStatus
    lane: Lane
    trigger_source: str
    logical_key: str | None
    parent_execution_id: str | None
    retry_count: int
    backend: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    error_category: str | None
    result: dict[str, Any] | None
    due_at: datetime | None = Field(
        default=None, description="A queued execution is not claimed before this moment."
    )

    @classmethod
    def of(cls, execution: Execution) -> ExecutionOut:
        """From core's `Execution`."""
        return cls.model_validate(execution.to_dict())


class ExecutionPage(BaseModel):
    """A page of executions, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[ExecutionOut]
    next_cursor: str | None


class MetricsRow(BaseModel):
    """One `otc_metrics_daily` row (same fields as `spine query metrics --format json`)."""

    trade_date: str
    symbol: str
    trade_count: int
    volume: float
    notional: float
    vwap: float
    high: float
    low: float
    first_price: float
    last_price: float
    venue_count: int
    venue_hhi: float
    short_exempt_share: float
    regular_hours_volume: float
    extended_hours_volume: float


class MetricsPage(BaseModel):
    """Daily metrics ordered by date then symbol."""

    items: list[MetricsRow]
    next_offset: int | None


class TradeRow(BaseModel):
    """One normalized trade."""

    batch_id: str
    source_key: str
    line_number: int
    trade_date: str
    trade_time: str
    timestamp: str
    symbol: str
    venue: str
    short_type: str
    size: float
    price: float
    notional: float
    is_regular_hours: bool


class TradesPage(BaseModel):
    """Trades ordered by date, time, source and line."""

    items: list[TradeRow]
    next_offset: int | None


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message for people, optional per-field details."""

    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness."""

    status: str


class Check(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """Readiness: database reachable, migrations current, a worker seen recently."""

    ready: bool
    checks: dict[str, Check]
    reasons: list[str]
