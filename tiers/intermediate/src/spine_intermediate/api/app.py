"""`create_app(settings)`: the FastAPI application.

Endpoints are plain `def` functions: FastAPI runs them in its thread pool, where they call the
synchronous dispatcher and stores like any other thread does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spine_core.errors import (
    ConfigurationError,
    ExecutionNotFound,
    IllegalTransition,
    InvalidParams,
    MissingCapability,
    SpineError,
    UnknownPipeline,
)
from spine_core.execution import ExecutionFilter, TriggerSource
from spine_core.status import ExecutionStatus
from spine_core.tier import Runtime, Settings
from spine_intermediate import __version__
from spine_intermediate.api.limits import BodyLimitMiddleware
from spine_intermediate.api.models import (
    Check,
    ErrorResponse,
    ExecutionOut,
    ExecutionPage,
    Health,
    MetricsPage,
    MetricsRow,
    Readiness,
    SubmitRequest,
    TradeRow,
    TradesPage,
)
from spine_otc.layout import SYMBOL_PATTERN
from spine_otc.store import OtcStore

log = logging.getLogger("spine.api")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_WORKER_STALE_SECONDS = 30.0
API_WORKER_MODES = ("embedded", "none")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Unknown pipeline or missing capability"},
    404: {"model": ErrorResponse, "description": "No such execution"},
    413: {"model": ErrorResponse, "description": "Request body over the limit"},
    422: {"model": ErrorResponse, "description": "Invalid parameters (the field is named)"},
}


SymbolQuery = Annotated[str | None, Query(max_length=14, pattern=f"^{SYMBOL_PATTERN.pattern}$")]
"""A symbol filter, validated by the domain's own rule."""
DateQuery = Annotated[date | None, Query(alias="date")]
OffsetQuery = Annotated[int, Query(ge=0)]

HIGHER_TIER_ENDPOINTS = (
    ("GET", "/executions/{execution_id}/events", "market-spine-advanced"),
    ("POST", "/executions/{execution_id}/cancel", "market-spine-advanced"),
    ("GET", "/dead-letters", "market-spine-advanced"),
    ("POST", "/dead-letters/{dead_letter_id}/retry", "market-spine-advanced"),
    ("GET", "/health/metrics", "market-spine-advanced"),
)
"""Endpoints a higher tier serves; here they answer 501 naming what to install."""


def _error(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JSONResponse({"error": body}, status_code=status)


def api_worker_mode(options: Mapping[str, str]) -> str:
    """`SPINE_API_WORKER`: embedded (run work in the API process, default) or none (enqueue)."""
    mode = (options.get("api_worker") or "embedded").strip().lower()
    if mode not in API_WORKER_MODES:
        raise ConfigurationError(f"SPINE_API_WORKER must be embedded or none, got {mode!r}")
    return mode


def _int_setting(options: Mapping[str, str], name: str, default: float) -> float:
    raw = options.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"SPINE_{name.upper()} must be a number, got {raw!r}") from None


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The API. Opens the active tier's runtime at startup (or uses `runtime`, left open).

    With SPINE_API_WORKER=embedded (the default) the process also runs a LocalBackend; with
    `none` it only enqueues and `spine worker start` processes run the work.
    """
    from spine_intermediate.tier import TIER

    if settings is None:
        settings = (
            runtime.settings
            if runtime is not None
            else Settings.from_env(TIER.default_database_url)
        )
    mode = api_worker_mode(settings.options)
    max_body = int(_int_setting(settings.options, "api_max_body_bytes", DEFAULT_MAX_BODY_BYTES))
    stale = _int_setting(settings.options, "worker_stale_seconds", DEFAULT_WORKER_STALE_SECONDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        owned = runtime is None
        rt = (
            runtime
            if runtime is not None
            else await anyio.to_thread.run_sync(TIER.open_runtime, settings)
        )
        app.state.runtime = rt
        if owned and mode == "embedded":
            await anyio.to_thread.run_sync(rt.backend.start)
        try:
            yield
        finally:
            if owned:
                await anyio.to_thread.run_sync(rt.close)

    app = FastAPI(
        title="Market Spine API",
        version=__version__,
        description="Submit and inspect executions; read OTC metrics and trades.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)

    def rt() -> Runtime:
        return app.state.runtime

    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "(body)",
                "message": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error(422, "invalid_request", message, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(SpineError)
    async def _spine(request: Request, exc: SpineError) -> JSONResponse:
        if isinstance(exc, InvalidParams):
            return _error(422, "invalid_params", str(exc), exc.errors)
        if isinstance(exc, ExecutionNotFound):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, UnknownPipeline):
            return _error(400, "unknown_pipeline", str(exc))
        if isinstance(exc, MissingCapability):
            return _error(400, "missing_capability", str(exc))
        if isinstance(exc, IllegalTransition):
            return _error(409, "illegal_transition", str(exc))
        if isinstance(exc, ConfigurationError):
            log.error("unavailable: %s", exc)
            return _error(503, "unavailable", str(exc))
        return _error(400, "error", str(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc_info=exc,
        )
        return _error(500, "internal_error", "internal error; the server log has the details")

    # -- executions ---------------------------------------------------------------------------

    @app.post(
        "/executions",
        status_code=202,
        response_model=ExecutionOut,
        responses=_ERRORS,
        tags=["executions"],
        summary="Submit a pipeline or workflow",
    )
    def submit(body: SubmitRequest) -> ExecutionOut:
        execution = rt().dispatcher.submit(
            body.pipeline,
            body.params,
            lane=body.lane,
            trigger_source=TriggerSource.API,
            logical_key=body.logical_key,
        )
        return ExecutionOut.of(execution)

    @app.get(
        "/executions",
        response_model=ExecutionPage,
        responses=_ERRORS,
        tags=["executions"],
        summary="List executions, newest first",
    )
    def list_executions(
        status: ExecutionStatus | None = None,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        created_since: datetime | None = None,
        parent: Annotated[
            str | None,
            Query(max_length=100, description="Only executions whose parent is this id."),
        ] = None,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> ExecutionPage:
        if created_since is not None and created_since.tzinfo is None:
            created_since = created_since.replace(tzinfo=UTC)
        rows = rt().dispatcher.list(
            ExecutionFilter(
                status=status,
                name=pipeline,
                created_since=created_since,
                parent_execution_id=parent,
                before_id=cursor,
                limit=limit + 1,
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return ExecutionPage(
            items=[ExecutionOut.of(e) for e in rows],
            next_cursor=rows[-1].id if more and rows else None,
        )

    @app.get(
        "/executions/{execution_id}",
        response_model=ExecutionOut,
        responses=_ERRORS,
        tags=["executions"],
        summary="One execution",
    )
    def get_execution(execution_id: str) -> ExecutionOut:
        return ExecutionOut.of(rt().dispatcher.get(execution_id))

    # -- OTC ----------------------------------------------------------------------------------

    @app.get(
        "/otc/metrics/daily",
        response_model=MetricsPage,
        responses=_ERRORS,
        tags=["otc"],
        summary="Daily OTC metrics by date and symbol",
    )
    def metrics_daily(
        symbol: SymbolQuery = None,
        date_: DateQuery = None,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: date | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        offset: OffsetQuery = 0,
    ) -> MetricsPage:
        if date_ is not None and (from_ is not None or to is not None):
            return _error(
                422,
                "invalid_request",
                "date: give either date or from/to, not both",
                [{"field": "query.date", "message": "conflicts with from/to"}],
            )
        low, high = (date_, date_) if date_ is not None else (from_, to)
        store: OtcStore = rt().resources.get(OtcStore)
        rows = store.query_metrics(
            symbol=symbol, date_from=low, date_to=high, limit=limit + 1, offset=offset
        )
        more = len(rows) > limit
        return MetricsPage(
            items=[MetricsRow(**m.to_json_dict()) for m in rows[:limit]],
            next_offset=offset + limit if more else None,
        )

    @app.get(
        "/otc/trades",
        response_model=TradesPage,
        responses=_ERRORS,
        tags=["otc"],
        summary="Normalized OTC trades",
    )
    def trades(
        symbol: SymbolQuery = None,
        date_: DateQuery = None,
        venue: Annotated[str | None, Query(max_length=1, pattern=r"^[A-Z]$")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        offset: OffsetQuery = 0,
    ) -> TradesPage:
        store: OtcStore = rt().resources.get(OtcStore)
        rows = store.query_trades(
            symbol=symbol, trade_date=date_, venue=venue, limit=limit + 1, offset=offset
        )
        more = len(rows) > limit
        return TradesPage(
            items=[TradeRow(**t.to_json_dict()) for t in rows[:limit]],
            next_offset=offset + limit if more else None,
        )

    # -- health -------------------------------------------------------------------------------

    @app.get("/health", response_model=Health, tags=["health"], summary="Liveness")
    def health() -> Health:
        return Health(status="ok")

    @app.get(
        "/health/ready",
        response_model=Readiness,
        tags=["health"],
        responses={503: {"model": Readiness, "description": "Not ready, with reasons"}},
        summary="Readiness: database, migrations, a recent worker",
    )
    def ready() -> Any:
        checks: dict[str, Check] = {}
        store: Any = rt().store
        try:
            store.ping()
            checks["database"] = Check(ok=True, detail="reachable")
        except Exception as exc:
            checks["database"] = Check(ok=False, detail=_safe(exc, "database unreachable"))
        if checks["database"].ok:
            try:
                have, need = store.schema_status()
                checks["migrations"] = Check(
                    ok=have >= need, detail=f"schema at {have}, code needs {need}"
                )
            except Exception as exc:
                checks["migrations"] = Check(ok=False, detail=_safe(exc, "cannot read _migrations"))
            try:
                seen = store.last_worker_heartbeat()
                if seen is None:
                    checks["worker"] = Check(ok=False, detail="no worker has been seen")
                else:
                    age = (datetime.now(UTC) - seen).total_seconds()
                    checks["worker"] = Check(
                        ok=age <= stale, detail=f"a worker was seen {age:.1f}s ago"
                    )
            except Exception as exc:
                checks["worker"] = Check(ok=False, detail=_safe(exc, "cannot read workers"))
        else:
            checks["migrations"] = Check(ok=False, detail="database unreachable")
            checks["worker"] = Check(ok=False, detail="database unreachable")
        reasons = [f"{name}: {c.detail}" for name, c in checks.items() if not c.ok]
        body = Readiness(ready=not reasons, checks=checks, reasons=reasons)
        if reasons:
            return JSONResponse(body.model_dump(), status_code=503)
        return body

    for method, path, distribution in HIGHER_TIER_ENDPOINTS:
        app.add_api_route(
            path,
            _needs_tier(f"{method} {path}", distribution, TIER.name),
            methods=[method],
            include_in_schema=False,
        )

    return app


def _needs_tier(endpoint: str, distribution: str, active_tier: str) -> Any:
    def handler() -> JSONResponse:
        missing = MissingCapability(endpoint, distribution, active_tier)
        return _error(501, "missing_capability", str(missing))

    return handler


def _safe(exc: Exception, fallback: str) -> str:
    """A message safe for clients: spine errors are written for people; others are not shown."""
    if isinstance(exc, SpineError):
        return str(exc)
    log.warning("%s: %s: %s", fallback, type(exc).__name__, exc)
    return fallback
