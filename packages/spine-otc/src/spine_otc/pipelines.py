"""The OTC pipelines and the `otc.daily` workflow that chains them.

`otc.ingest`, `otc.normalize` and `otc.metrics.daily` each find their store with
`ctx.resource(OtcStore)`, so they run unchanged on every tier that provides one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spine_core.errors import ErrorCategory
from spine_core.quality import Gate, QualityMetrics, Severity, failed_error_gates, param
from spine_core.registry import PipelineContext, Registry, pipeline
from spine_core.results import StepResult
from spine_core.workflow import Step, Workflow
from spine_otc.errors import DuplicateBatch, FileChangedError, FileFormatError
from spine_otc.metrics import sanity_quality
from spine_otc.normalize import normalize_line
from spine_otc.parser import PsvReader, RawBlock, file_sha256, not_a_file
from spine_otc.store import Batch, BatchStatus, CaptureInfo, OtcStore, Replacement

DEFAULT_MAX_REJECT_RATE = 0.01
CAPTURE_ATTEMPTS = 3
"""Captures tried when runs ingesting the same content at once collide."""
MAX_METRIC_DATES = 3660
"""The most dates one metrics run recomputes (ten years of calendar days)."""


class IngestProgress(Protocol):
    """Optional resource: told (bytes read, file size) while `otc.ingest` reads a file."""

    def __call__(self, bytes_read: int, total_bytes: int) -> None:
        """Report progress."""
        ...


class IngestParams(BaseModel):
    """Params of `otc.ingest`."""

    model_config = ConfigDict(extra="forbid")
    file: Path


class NormalizeParams(BaseModel):
    """Params of `otc.normalize`."""

    model_config = ConfigDict(extra="forbid")
    batch_id: str = Field(min_length=1)
    max_reject_rate: float = Field(DEFAULT_MAX_REJECT_RATE, ge=0, le=1)


class MetricsParams(BaseModel):
    """Params of `otc.metrics.daily`: one of batch_id, dates, or date_from with date_to."""

    model_config = ConfigDict(extra="forbid")
    batch_id: str | None = Field(None, min_length=1)
    dates: list[date] | None = None
    date_from: date | None = None
    date_to: date | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> Self:
        ranged = self.date_from is not None or self.date_to is not None
        chosen = sum([self.batch_id is not None, self.dates is not None, ranged])
        if chosen != 1:
            raise ValueError("give exactly one of batch_id, dates, or date_from with date_to")
        if ranged:
            if self.date_from is None or self.date_to is None:
                raise ValueError("date_from and date_to go together")
            if self.date_from > self.date_to:
                raise ValueError("date_from is after date_to")
        if len(self.selected_dates()) > MAX_METRIC_DATES:
            raise ValueError(f"at most {MAX_METRIC_DATES} dates per run")
        return self

    def selected_dates(self) -> tuple[date, ...]:
        """The dates chosen by `dates` or the range (empty when selecting by batch)."""
        if self.dates is not None:
            return tuple(sorted(set(self.dates)))
        if self.date_from is None or self.date_to is None:
            return ()
        span = min((self.date_to - self.date_from).days, MAX_METRIC_DATES)
        return tuple(self.date_from + timedelta(days=n) for n in range(span + 1))


class DailyParams(BaseModel):
    """Params of the `otc.daily` workflow."""

    model_config = ConfigDict(extra="forbid")
    file: Path
    max_reject_rate: float = Field(DEFAULT_MAX_REJECT_RATE, ge=0, le=1)


@pipeline("otc.ingest", params=IngestParams)
def ingest(params: IngestParams, ctx: PipelineContext) -> StepResult:
    """Capture a short-sale file's raw rows, or a ZIP's; the same content twice adds nothing."""
    store = ctx.resource(OtcStore)
    path = params.file
    if problem := not_a_file(path):
        return StepResult.fail(f"{problem}: {path}", ErrorCategory.VALIDATION)
    try:
        content_hash = file_sha256(path)
    except FileFormatError as exc:
        return StepResult.fail(str(exc), ErrorCategory.DATA_QUALITY)
    info = CaptureInfo.for_file(path, content_hash)
    progress = ctx.resources.get(IngestProgress) if IngestProgress in ctx.resources else None
    for _ in range(CAPTURE_ATTEMPTS):
        existing = store.find_batch(content_hash)
        if existing is not None:
            return _ingested(existing, duplicate=True, restatement=False)
        restatement = bool(store.list_batches(info.source_key, limit=1))
        try:
            batch = store.capture_batch(
                info, _unchanged(PsvReader(path, on_progress=progress), content_hash)
            )
        except FileFormatError as exc:
            return StepResult.fail(str(exc), ErrorCategory.DATA_QUALITY)
        except FileChangedError as exc:
            return StepResult.fail(str(exc), ErrorCategory.INFRASTRUCTURE)
        except DuplicateBatch:
            continue  # captured concurrently: that batch is found above (or it rolled back)
        return _ingested(batch, duplicate=False, restatement=restatement)
    return StepResult.fail(
        f"{path}: capturing kept colliding with concurrent captures of the same content; "
        "ingest it again",
        ErrorCategory.INFRASTRUCTURE,
    )


def _unchanged(reader: PsvReader, content_hash: str) -> Iterator[RawBlock]:
    yield from reader.blocks()
    if reader.content_hash != content_hash:
        raise FileChangedError(reader.path)


def _ingested(batch: Batch, *, duplicate: bool, restatement: bool) -> StepResult:
    output = {
        "batch_id": batch.batch_id,
        "source_key": batch.source_key,
        "content_hash": batch.content_hash,
        "rows": batch.row_count,
        "duplicate": duplicate,
        "restatement": restatement,
    }
    quality = QualityMetrics(record_count=batch.row_count, valid_count=batch.row_count)
    return StepResult.ok(output, quality=quality)


@pipeline("otc.normalize", params=NormalizeParams)
def normalize(params: NormalizeParams, ctx: PipelineContext) -> StepResult:
    """Validate a batch's rows into trades and rejects; commit only under the reject gate."""
    store = ctx.resource(OtcStore)
    batch = store.get_batch(params.batch_id)
    if batch is None:
        return StepResult.fail(
            f"no OTC batch with id {params.batch_id!r}", ErrorCategory.VALIDATION
        )
    if batch.status is BatchStatus.NORMALIZED:
        quality = QualityMetrics(
            record_count=batch.row_count,
            valid_count=batch.trade_count or 0,
            invalid_count=batch.reject_count or 0,
            failure_reasons=store.reject_counts(batch.batch_id),
        )
        return StepResult.ok(_normalized(batch, already=True), quality=quality)
    newer = [
        b
        for b in store.list_batches(batch.source_key)
        if b.captured_at > batch.captured_at and b.status is BatchStatus.NORMALIZED
    ]
    if newer:
        return StepResult.fail(
            f"batch {batch.batch_id} of {batch.source_key} is superseded by batch "
            f"{newer[0].batch_id}, captured later and already normalized",
            ErrorCategory.VALIDATION,
        )
    refusals: list[str] = []

    def accept(quality: QualityMetrics) -> bool:
        refusals.clear()
        if quality.invalid_rate > params.max_reject_rate:
            refusals.append(f"max_reject_rate is {params.max_reject_rate:.2%}")
        refusals.extend(g.message for g in failed_error_gates(ctx.evaluate_gates(quality)))
        return not refusals

    outcome = store.normalize_batch(batch.batch_id, normalize_line, accept)
    quality = outcome.quality
    if not outcome.accepted:
        return StepResult.fail(
            f"batch {batch.batch_id} ({batch.source_key}) not normalized: reject rate "
            f"{quality.invalid_rate:.2%} ({quality.invalid_count} of {quality.record_count} rows); "
            f"{'; '.join(refusals)}. Nothing was written; the batch is marked gate_failed",
            ErrorCategory.DATA_QUALITY,
            quality=quality,
            output=_normalized(outcome.batch, already=False),
        )
    output = _normalized(outcome.batch, already=False, replaced=outcome.replaced)
    return StepResult.ok(output, quality=quality)


def _normalized(
    batch: Batch, *, already: bool, replaced: tuple[Replacement, ...] = ()
) -> dict[str, Any]:
    """The step's output; `replaced` says which earlier batches' dates this one restated."""
    rows = batch.row_count
    return {
        "batch_id": batch.batch_id,
        "source_key": batch.source_key,
        "status": batch.status.value,
        "trades": batch.trade_count,
        "rejects": batch.reject_count,
        "reject_rate": (batch.reject_count or 0) / rows if rows else 0.0,
        "affected_dates": [d.isoformat() for d in batch.affected_dates],
        "already_normalized": already,
        "replaced": [r.to_json_dict() for r in replaced],
    }


@pipeline("otc.metrics.daily", params=MetricsParams)
def daily_metrics(params: MetricsParams, ctx: PipelineContext) -> StepResult:
    """Recompute `otc_metrics_daily` in the database; commit only if the metrics are sane."""
    store = ctx.resource(OtcStore)
    dates = params.selected_dates()
    if params.batch_id is not None:
        batch = store.get_batch(params.batch_id)
        if batch is None:
            return StepResult.fail(
                f"no OTC batch with id {params.batch_id!r}", ErrorCategory.VALIDATION
            )
        if batch.status is not BatchStatus.NORMALIZED:
            return StepResult.fail(
                f"batch {batch.batch_id} is {batch.status.value}, not normalized: "
                "normalize it before computing its metrics",
                ErrorCategory.VALIDATION,
            )
        dates = batch.affected_dates
    refusals: list[str] = []

    def accept(quality: QualityMetrics) -> bool:
        refusals.clear()
        vwap_bad, hhi_bad = quality.value("vwap_outside_range"), quality.value("hhi_out_of_range")
        if vwap_bad or hhi_bad:
            refusals.append(
                f"{vwap_bad:g} rows with VWAP outside [low, high], "
                f"{hhi_bad:g} with HHI outside 0..10000"
            )
        refusals.extend(g.message for g in failed_error_gates(ctx.evaluate_gates(quality)))
        return not refusals

    if dates:
        outcome = store.recompute_daily_metrics(dates, accept)
        quality, accepted = outcome.quality, outcome.accepted
    else:
        quality, accepted = sanity_quality(0, 0, 0, 0), True
    output = {"dates": [d.isoformat() for d in dates], "rows": quality.record_count}
    if not accepted:
        return StepResult.fail(
            f"daily metrics not saved: {'; '.join(refusals)}. Nothing was written",
            ErrorCategory.DATA_QUALITY,
            quality=quality,
            output=output,
        )
    return StepResult.ok(output, quality=quality)


HAS_DATA_ROWS = Gate("the file has data rows", "record_count", ">=", 1, severity=Severity.WARN)
"""A header and a `0` trailer is well-formed but says nothing: the run completes with a warning."""


def daily_steps(file_of: Callable[[Any], Any]) -> tuple[Step, ...]:
    """Ingest, normalize and metrics of the file `file_of(ctx)` names: the main job's steps."""
    return (
        Step.pipeline(
            "ingest",
            "otc.ingest",
            lambda ctx: {"file": file_of(ctx)},
            gates=[HAS_DATA_ROWS],
        ),
        Step.pipeline(
            "normalize",
            "otc.normalize",
            lambda ctx: {
                "batch_id": ctx.output("ingest")["batch_id"],
                "max_reject_rate": ctx.params.get("max_reject_rate", DEFAULT_MAX_REJECT_RATE),
            },
            gates=[Gate.max("reject_rate", param("max_reject_rate", DEFAULT_MAX_REJECT_RATE))],
        ),
        Step.pipeline(
            "metrics",
            "otc.metrics.daily",
            lambda ctx: {"batch_id": ctx.output("ingest")["batch_id"]},
            gates=[
                Gate.compare("vwap_outside_range", "==", 0),
                Gate.compare("hhi_out_of_range", "==", 0),
            ],
        ),
    )


DAILY_WORKFLOW = Workflow(
    "otc.daily",
    daily_steps(lambda ctx: ctx.params["file"]),
    description="Ingest a FINRA short-sale file, normalize it under the reject gate, "
    "and recompute the daily metrics of the dates it touched.",
    params_model=DailyParams,
)


MAX_BACKFILL_FILES = 10_000
"""A backfill makes one child execution per file in one transaction; this bounds a request."""


class BackfillParams(BaseModel):
    """Params of the `otc.backfill` workflow."""

    model_config = ConfigDict(extra="forbid")
    files: list[Path] = Field(min_length=1, max_length=MAX_BACKFILL_FILES)
    max_reject_rate: float = Field(DEFAULT_MAX_REJECT_RATE, ge=0, le=1)


BACKFILL_CONCURRENCY = 4

BACKFILL_WORKFLOW = Workflow(
    "otc.backfill",
    (
        Step.map(
            "files",
            lambda ctx: [str(f) for f in ctx.params["files"]],
            Workflow("otc.daily.file", daily_steps(lambda ctx: ctx.params["item"])),
            BACKFILL_CONCURRENCY,
        ),
    ),
    description="Run the main job on many files at once: each file an execution of its own "
    "(a Step.map; market-spine-advanced).",
    params_model=BackfillParams,
)

PIPELINES = (ingest, normalize, daily_metrics)


def register(registry: Registry) -> None:
    """Add the OTC pipelines and workflows (the `spine.pipelines` entry point)."""
    registry.add(*PIPELINES, DAILY_WORKFLOW, BACKFILL_WORKFLOW)
