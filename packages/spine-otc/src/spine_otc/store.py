"""`OtcStore`: the interface each tier implements to keep the OTC tables.

Validation rules live in Python (`normalize_line`, the accept callbacks); a store does the bulk
writes, each operation in one transaction, and decides nothing about data quality itself.
`spine_otc.testing.OtcStoreConformance` checks an implementation against this contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from spine_core.quality import QualityMetrics
from spine_otc.metrics import DailyMetrics
from spine_otc.normalize import Reject, RejectReason, Trade
from spine_otc.parser import RawBlock, RawRow
from spine_otc.source import source_key_for

TABLES = ("otc_batches", "otc_trades_raw", "otc_trades", "otc_rejects", "otc_metrics_daily")
"""The tables an `OtcStore` keeps, as `table_counts` names them."""

Normalizer = Callable[[str], Trade | Reject]
"""Turns one raw line into a trade or a reject (`spine_otc.normalize.normalize_line`)."""

Accept = Callable[[QualityMetrics], bool]
"""Decides, before commit, whether a write may stand (the quality gates)."""


class BatchStatus(StrEnum):
    """Where a captured file is in the pipeline."""

    CAPTURED = "captured"
    NORMALIZED = "normalized"
    GATE_FAILED = "gate_failed"


@dataclass(frozen=True)
class CaptureInfo:
    """Everything about a new batch that is known before its rows are read."""

    batch_id: str
    source_key: str
    file_name: str
    content_hash: str
    captured_at: datetime

    @classmethod
    def for_file(cls, path: str | Path, content_hash: str) -> CaptureInfo:
        """A new batch for `path`; `source_key_for` says which source it restates."""
        path = Path(path)
        return cls(
            uuid.uuid4().hex, source_key_for(path), str(path), content_hash, datetime.now(UTC)
        )


@dataclass(frozen=True)
class Batch:
    """One captured file (`otc_batches` row).

    `trade_count`/`reject_count` are what the last normalization saw (also when the gate
    refused it); `affected_dates` are the trade dates its accepted normalization wrote: a
    restatement replaces the source's trades of those dates only.
    """

    batch_id: str
    source_key: str
    file_name: str
    content_hash: str
    row_count: int
    captured_at: datetime
    status: BatchStatus
    detail: str | None = None
    trade_count: int | None = None
    reject_count: int | None = None
    affected_dates: tuple[date, ...] = field(default_factory=tuple)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "batch_id": self.batch_id,
            "source_key": self.source_key,
            "file_name": self.file_name,
            "content_hash": self.content_hash,
            "row_count": self.row_count,
            "captured_at": self.captured_at.isoformat(),
            "status": self.status.value,
            "detail": self.detail,
            "trade_count": self.trade_count,
            "reject_count": self.reject_count,
            "affected_dates": [d.isoformat() for d in self.affected_dates],
        }


@dataclass(frozen=True)
class StoredTrade:
    """An `otc_trades` row: a trade and where it came from."""

    batch_id: str
    source_key: str
    line_number: int
    trade: Trade

    def to_json_dict(self) -> dict[str, Any]:
        """JSON numbers; sizes stay integers when they are whole."""
        trade = self.trade
        size = (
            int(trade.size) if trade.size == trade.size.to_integral_value() else float(trade.size)
        )
        return {
            "batch_id": self.batch_id,
            "source_key": self.source_key,
            "line_number": self.line_number,
            "trade_date": trade.trade_date.isoformat(),
            "trade_time": trade.trade_time,
            "timestamp": trade.timestamp,
            "symbol": trade.symbol,
            "venue": trade.venue,
            "short_type": trade.short_type,
            "size": size,
            "price": float(trade.price),
            "notional": round(float(trade.notional), 4),
            "is_regular_hours": trade.is_regular_hours,
        }


@dataclass(frozen=True)
class RejectRecord:
    """An `otc_rejects` row: a rejected line, verbatim, with its reason."""

    batch_id: str
    line_number: int
    reason: RejectReason
    message: str
    raw_line: str

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "batch_id": self.batch_id,
            "line_number": self.line_number,
            "reason": self.reason.value,
            "message": self.message,
            "raw_line": self.raw_line,
        }


@dataclass(frozen=True)
class Replacement:
    """Trades of an earlier batch of the same source that a restatement replaced."""

    batch_id: str
    dates: tuple[date, ...]
    trades_before: int
    trades_after: int

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "batch_id": self.batch_id,
            "dates": [d.isoformat() for d in self.dates],
            "trades_before": self.trades_before,
            "trades_after": self.trades_after,
        }


def replacements(
    replaced: Iterable[tuple[str, date, int]], new_per_date: Mapping[date, int]
) -> tuple[Replacement, ...]:
    """Fold (earlier batch, date, trades) rows into one `Replacement` per earlier batch.

    `trades_after` counts the new batch's trades on the dates the earlier batch lost.
    """
    per_batch: dict[str, dict[date, int]] = {}
    for batch_id, day, count in replaced:
        per_batch.setdefault(batch_id, {})[day] = count
    return tuple(
        Replacement(
            batch_id,
            tuple(sorted(days)),
            sum(days.values()),
            sum(new_per_date.get(d, 0) for d in days),
        )
        for batch_id, days in sorted(per_batch.items())
    )


@dataclass(frozen=True)
class NormalizeOutcome:
    """What `normalize_batch` did: `accepted` False means nothing was written.

    `replaced` lists the earlier batches of the source whose trades this one replaced.
    """

    batch: Batch
    quality: QualityMetrics
    accepted: bool
    replaced: tuple[Replacement, ...] = ()


@dataclass(frozen=True)
class MetricsOutcome:
    """What `recompute_daily_metrics` did (`dates` sorted); `accepted` False: nothing written."""

    dates: tuple[date, ...]
    quality: QualityMetrics
    accepted: bool

    @property
    def rows(self) -> int:
        """Metric rows computed for the dates."""
        return self.quality.record_count


class OtcStore(Protocol):
    """The OTC tables of one database. Synchronous; every write is one transaction."""

    def find_batch(self, content_hash: str) -> Batch | None:
        """The batch that captured this exact content, if any."""
        ...

    def get_batch(self, batch_id: str) -> Batch | None:
        """The batch with this id, if any."""
        ...

    def list_batches(self, source_key: str | None = None, *, limit: int = 100) -> list[Batch]:
        """Batches, newest capture first, optionally of one source."""
        ...

    def capture_batch(self, info: CaptureInfo, rows: Iterable[RawRow | RawBlock]) -> Batch:
        """Write the batch (status captured) and its raw rows, all or nothing.

        `rows` are rows, or blocks of consecutive rows (`PsvReader.blocks`, what ingest
        passes); `spine_otc.parser.as_blocks` reads both as blocks.

        Raises `DuplicateBatch` (writing nothing) if `info.content_hash` is already captured.
        If iterating `rows` raises, everything is rolled back and the error propagates.
        Raw rows keep batch id, source file, source key, line number, line and record hash.
        """
        ...

    def normalize_batch(
        self, batch_id: str, normalizer: Normalizer, accept: Accept
    ) -> NormalizeOutcome:
        """Write the batch's trades over its source's trades of those dates, in ONE transaction.

        Runs `normalizer` on every raw row in line order, inserting trades and rejects (the
        batch's own earlier ones deleted first), and tallies them (`NormalizeTally`); then
        deletes the trades of other batches of the same source key on the dates this batch has
        trades for, never on other dates, and reports them in `replaced`. If `accept(quality)`
        is true it commits and marks the batch normalized with its counts and `affected_dates`
        (its trades' dates); otherwise it rolls back and marks the batch gate_failed with the
        observed counts and `refusal_detail(quality)`. Raises `BatchNotFound` for an unknown id.
        Concurrent calls for one source serialise; any order ends as some sequential order.
        """
        ...

    def recompute_daily_metrics(self, dates: Collection[date], accept: Accept) -> MetricsOutcome:
        """Recompute `otc_metrics_daily` for the dates, set-based, in ONE transaction.

        Deletes the dates' metric rows, inserts them anew from `otc_trades`, then measures
        sanity (`sanity_quality`) and commits only if `accept(quality)` is true. No dates is
        an accepted no-op. `spine_otc.sql` has the statements. Concurrent calls touching a
        date serialise on it, so each reads every trade committed before it started.
        """
        ...

    def query_metrics(
        self,
        *,
        symbol: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DailyMetrics]:
        """Daily metrics ordered by date then symbol; the date bounds are inclusive."""
        ...

    def query_trades(
        self,
        *,
        symbol: str | None = None,
        trade_date: date | None = None,
        venue: str | None = None,
        batch_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredTrade]:
        """Trades ordered by date, time, source key and line number."""
        ...

    def query_rejects(
        self,
        batch_id: str,
        *,
        reason: RejectReason | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RejectRecord]:
        """A batch's rejected rows in line order."""
        ...

    def reject_counts(self, batch_id: str) -> dict[str, int]:
        """How many of the batch's rows were rejected, per reason code."""
        ...

    def table_counts(self) -> dict[str, int]:
        """Row count of each table in `TABLES`."""
        ...
