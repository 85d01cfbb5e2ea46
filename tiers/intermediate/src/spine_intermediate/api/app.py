"""`create_app(settings)`: the FastAPI application.

Endpoints are plain `def` functions: FastAPI runs them in its thread pool, where they call the
synchronous dispatcher and stores like any other thread does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from spine_core.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    ExecutionNotFound,
    IllegalTransition,
    InvalidParams,
    MissingCapability,
    SpineError,
    UnknownPipeline,
)
from spine_core.execution import ExecutionFilter, TriggerSource
from spine_core.log_format import mask_secrets
from spine_core.status import ExecutionStatus
from spine_core.tier import Runtime, Settings, Tier, active_tier, installed_tiers
from spine_intermediate import __version__
from spine_intermediate.api.errors import allowed_methods, invalid_fields
from spine_intermediate.api.files import (
    DEFAULT_MAX_UPLOAD_BYTES,
    FILE_NAME_PATTERN,
    UPLOAD_PATH,
    UploadTooLarge,
    checked_file_params,
    data_dirs,
    store_upload,
)
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
    RunHistory,
    RunRow,
    SubmitRequest,
    TradeRow,
    TradesPage,
    UploadOut,
)
from spine_intermediate.api.paging import cursor_page
from spine_intermediate.api.queries import (
    ExecutionId,
    IsoDate,
    IsoDateTime,
    Offset,
    Text,
    no_unknown_query_params,
)
from spine_intermediate.api.security import Unauthorized, api_token, guards_reads, require_token
from spine_otc.layout import SYMBOL_PATTERN
from spine_otc.store import OtcStore

log = logging.getLogger("spine.api")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_WORKER_STALE_SECONDS = 30.0
API_WORKER_MODES = ("embedded", "none")
DEFAULT_TIER = "intermediate"
"""The tier an app serves when given neither a tier nor a runtime (its entry point name)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Unknown pipeline or missing capability"},
    401: {"model": ErrorResponse, "description": "Write endpoint without the API token"},
    404: {"model": ErrorResponse, "description": "No such execution"},
    413: {"model": ErrorResponse, "description": "Request body over the limit"},
    422: {"model": ErrorResponse, "description": "Invalid parameters (the field is named)"},
}


SymbolQuery = Annotated[str | None, Query(max_length=14, pattern=f"^{SYMBOL_PATTERN.pattern}$")]
"""A symbol filter, validated by the domain's own rule."""
DateQuery = Annotated[IsoDate | None, Query(alias="date")]

HIGHER_TIER_ENDPOINTS = (
    ("GET", "/executions/{execution_id}/events", "market-spine-advanced"),
    ("POST", "/executions/{execution_id}/cancel", "market-spine-advanced"),
    ("GET", "/dead-letters", "market-spine-advanced"),
    ("GET", "/dead-letters/{dead_letter_id}", "market-spine-advanced"),
    ("POST", "/dead-letters/{dead_letter_id}/retry", "market-spine-advanced"),
    ("POST", "/dead-letters/{dead_letter_id}/discard", "market-spine-advanced"),
    ("GET", "/health/metrics", "market-spine-advanced"),
)
"""Endpoints a higher tier serves; here they answer 501 naming what to install."""


def _error(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": mask_secrets(message)}
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


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    tier: Tier | None = None,
) -> FastAPI:
    """The API. Opens `tier`'s runtime at startup (or uses `runtime`, left open).

    `tier` defaults to the runtime's, else the installed intermediate tier, found by its entry
    point name so that this module does not import the tier module that imports the CLI.
    Every installed tier up to it mounts its routes (`Tier.extend_api`); endpoints none of them
    serves answer 501 naming the tier to install. With SPINE_API_WORKER=embedded (the default)
    the process also runs a LocalBackend; with `none` it only enqueues and `spine worker start`
    processes run the work.
    """
    if tier is None:
        tier = runtime.tier if runtime is not None else active_tier(DEFAULT_TIER)
    if settings is None:
        settings = (
            runtime.settings
            if runtime is not None
            else Settings.from_env(tier.default_database_url)
        )
    mode = api_worker_mode(settings.options)
    max_body = int(_int_setting(settings.options, "api_max_body_bytes", DEFAULT_MAX_BODY_BYTES))
    stale = _int_setting(settings.options, "worker_stale_seconds", DEFAULT_WORKER_STALE_SECONDS)
    max_upload = int(
        _int_setting(settings.options, "api_max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES)
    )
    allowed = data_dirs(settings.options)
    writes = [Depends(require_token(api_token(settings.options)))]
    reads = writes if guards_reads(settings.options) else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        owned = runtime is None
        rt = (
            runtime
            if runtime is not None
            else await anyio.to_thread.run_sync(tier.open_runtime, settings)
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
        dependencies=[Depends(no_unknown_query_params)],
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body, streamed=frozenset({UPLOAD_PATH}))

    def rt() -> Runtime:
        return app.state.runtime

    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = invalid_fields(list(exc.errors()), await request.body())
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error(422, "invalid_request", message, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        answer = _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        answer.headers.update(exc.headers or {})
        if exc.status_code == 405:
            answer.headers["Allow"] = ", ".join(allowed_methods(app.router.routes, request.scope))
        return answer

    @app.exception_handler(SpineError)
    async def _spine(request: Request, exc: SpineError) -> JSONResponse:
        if isinstance(exc, Unauthorized):
            denied = _error(401, "unauthorized", str(exc))
            denied.headers["WWW-Authenticate"] = "Bearer"
            return denied
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
        if isinstance(exc, ConcurrencyConflict):
            return _error(409, "logical_key_conflict", str(exc))
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
        dependencies=writes,
    )
    def submit(body: SubmitRequest) -> ExecutionOut:
        dispatcher = rt().dispatcher
        params = checked_file_params(dispatcher.registry, body.pipeline, body.params, allowed)
        execution = dispatcher.submit(
            body.pipeline,
            params,
            lane=body.lane,
            trigger_source=TriggerSource.API,
            logical_key=body.logical_key,
        )
        return ExecutionOut.of(execution)

    @app.get(
        "/executions",
        response_model=ExecutionPage,
        dependencies=reads,
        responses=_ERRORS,
        tags=["executions"],
        summary="List executions, newest first",
    )
    def list_executions(
        status: ExecutionStatus | None = None,
        pipeline: Text | None = None,
        created_since: IsoDateTime | None = None,
        parent: Annotated[
            Text | None,
            Query(max_length=100, description="Only executions whose parent is this id."),
        ] = None,
        cursor: Annotated[Text | None, Query(max_length=100)] = None,
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
        shown, next_cursor = cursor_page(rows, limit)
        return ExecutionPage(items=[ExecutionOut.of(e) for e in shown], next_cursor=next_cursor)

    @app.get(
        "/executions/{execution_id}",
        response_model=ExecutionOut,
        dependencies=reads,
        responses=_ERRORS,
        tags=["executions"],
        summary="One execution",
    )
    def get_execution(execution_id: ExecutionId) -> ExecutionOut:
        return ExecutionOut.of(rt().dispatcher.get(execution_id))

    @app.get(
        "/executions/{execution_id}/runs",
        response_model=RunHistory,
        dependencies=reads,
        responses=_ERRORS,
        tags=["executions"],
        summary="An execution's workflow run history: the run and each step",
    )
    def execution_runs(execution_id: ExecutionId) -> RunHistory:
        runtime = rt()
        runtime.dispatcher.get(execution_id)  # 404 for an unknown execution
        records = [RunRow.of(r) for r in runtime.store.get_run(execution_id)]  # type: ignore[attr-defined]
        return RunHistory(run=records[0] if records else None, steps=records[1:])

    # -- OTC ----------------------------------------------------------------------------------

    @app.post(
        UPLOAD_PATH,
        status_code=201,
        response_model=UploadOut,
        responses={**_ERRORS, 413: {"model": ErrorResponse, "description": "Over the limit"}},
        tags=["otc"],
        summary="Upload a file (the raw request body) into the first data folder",
        dependencies=writes,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload(
        request: Request,
        name: Annotated[str, Query(pattern=FILE_NAME_PATTERN)],
        start: bool = False,
    ) -> Any:
        import anyio

        if not allowed:
            return _error(
                503, "unavailable", "uploads need a data folder: set SPINE_DATA_DIRS on the server"
            )
        try:
            path = await store_upload(request.stream(), allowed[0], name, max_upload)
        except UploadTooLarge:
            return _error(
                413, "payload_too_large", f"the file is larger than the limit of {max_upload} bytes"
            )
        execution = None
        if start:
            submitted = await anyio.to_thread.run_sync(
                lambda: rt().dispatcher.submit(
                    "otc.daily", {"file": str(path)}, trigger_source=TriggerSource.API
                )
            )
            execution = ExecutionOut.of(submitted)
        return UploadOut(path=str(path), execution=execution)

    @app.get(
        "/otc/metrics/daily",
        response_model=MetricsPage,
        dependencies=reads,
        responses=_ERRORS,
        tags=["otc"],
        summary="Daily OTC metrics by date and symbol",
    )
    def metrics_daily(
        symbol: SymbolQuery = None,
        date_: DateQuery = None,
        from_: Annotated[IsoDate | None, Query(alias="from")] = None,
        to: IsoDate | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        offset: Offset = 0,
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
        dependencies=reads,
        responses=_ERRORS,
        tags=["otc"],
        summary="Normalized OTC trades",
    )
    def trades(
        symbol: SymbolQuery = None,
        date_: DateQuery = None,
        venue: Annotated[str | None, Query(max_length=1, pattern=r"^[A-Z]$")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        offset: Offset = 0,
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

    app.state.guards = {"reads": reads, "writes": writes}  # for the routers tiers mount
    for installed in installed_tiers():
        if installed.rank <= tier.rank and installed.extend_api is not None:
            installed.extend_api(app)
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    for method, path, distribution in HIGHER_TIER_ENDPOINTS:
        if (method, path) in served:
            continue
        app.add_api_route(
            path,
            _needs_tier(f"{method} {path}", distribution, tier.name),
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
