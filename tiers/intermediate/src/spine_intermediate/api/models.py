"""Request and response models of the HTTP API (they define the OpenAPI document)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spine_core.dispatcher import MAX_LOGICAL_KEY_LENGTH
from spine_core.execution import Execution, Lane
from spine_core.ports import StepRunRecord
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
        min_length=1,
        max_length=MAX_LOGICAL_KEY_LENGTH,
        description="Concurrency key (needs market-spine-advanced).",
    )
    lane: Lane = Field(default=Lane.NORMAL, description="Queue partition.")

    @field_validator("pipeline", "logical_key", "params")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """Refuse what PostgreSQL cannot store (NUL in text, NaN in jsonb) as a 422, not a 500."""
        problem = _unstorable(value)
        if problem:
            raise ValueError(problem)
        return value


def _unstorable(value: Any) -> str | None:
    if isinstance(value, str):
        return "contains a NUL byte" if "\x00" in value else None
    if isinstance(value, float) and not math.isfinite(value):
        return "contains a number that is not finite"
    if isinstance(value, dict):
        return next(
            (p for item in value.items() for p in map(_unstorable, item) if p is not None), None
        )
    if isinstance(value, list):
        return next((p for p in map(_unstorable, value) if p is not None), None)
    return None


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
    warnings: list[str] = Field(
        default_factory=list,
        description="What the backend could not do yet, e.g. reach its broker: the execution "
        "stays queued and is sent once the broker answers.",
    )

    @classmethod
    def of(cls, execution: Execution) -> ExecutionOut:
        """From core's `Execution`."""
        return cls.model_validate(execution.to_dict())


class RunRow(BaseModel):
    """One row of workflow run history: the run itself (`step` null) or one finished step."""

    run_id: str
    execution_id: str | None
    workflow: str
    version: int
    step: str | None
    kind: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    error: str | None
    category: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: StepRunRecord) -> RunRow:
        """From core's `StepRunRecord`."""
        return cls.model_validate(dataclasses.asdict(record))


class RunHistory(BaseModel):
    """An execution's run and its steps in the order they finished (null until it starts)."""

    run: RunRow | None
    steps: list[RunRow]


class ExecutionPage(BaseModel):
    """A page of executions, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[ExecutionOut]
    next_cursor: str | None


class UploadOut(BaseModel):
    """A stored upload: the server path to pass as `file`, and the run started on it, if any."""

    path: str
    execution: ExecutionOut | None = None


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
