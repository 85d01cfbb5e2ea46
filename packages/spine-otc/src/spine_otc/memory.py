"""An `OtcStore` held in process memory: for tests, and to try the domain without a database."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import date

from spine_otc.errors import BatchNotFound, DuplicateBatch
from spine_otc.metrics import DailyMetrics, check_sanity, compute_daily_metrics
from spine_otc.normalize import NormalizeTally, Reject, RejectReason, refusal_detail
from spine_otc.parser import RawBlock, RawRow, as_blocks
from spine_otc.store import (
    Accept,
    Batch,
    BatchStatus,
    CaptureInfo,
    MetricsOutcome,
    NormalizeOutcome,
    Normalizer,
    RejectRecord,
    Replacement,
    StoredTrade,
    replacements,
)


@dataclasses.dataclass(frozen=True)
class _RawRecord:
    row: RawRow
    record_hash: str


class InMemoryOtcStore:
    """A thread-safe `OtcStore` whose transactions are copy-then-swap under one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._batches: dict[str, Batch] = {}
        self._raw: dict[str, list[_RawRecord]] = {}
        self._trades: dict[str, list[StoredTrade]] = {}
        self._rejects: dict[str, list[RejectRecord]] = {}
        self._metrics: dict[tuple[str, str], DailyMetrics] = {}

    def find_batch(self, content_hash: str) -> Batch | None:
        """The batch that captured this exact content, if any."""
        with self._lock:
            return next((b for b in self._batches.values() if b.content_hash == content_hash), None)

    def get_batch(self, batch_id: str) -> Batch | None:
        """The batch with this id, if any."""
        with self._lock:
            return self._batches.get(batch_id)

    def list_batches(self, source_key: str | None = None, *, limit: int = 100) -> list[Batch]:
        """Batches, newest capture first, optionally of one source."""
        with self._lock:
            found = [b for b in self._batches.values() if source_key in (None, b.source_key)]
        found.sort(key=lambda b: (b.captured_at, b.batch_id), reverse=True)
        return found[:limit]

    def capture_batch(self, info: CaptureInfo, rows: Iterable[RawRow | RawBlock]) -> Batch:
        """Write the batch and its raw rows, all or nothing."""
        self._refuse_duplicate(info.content_hash)
        records = [
            _RawRecord(row, row.record_hash) for block in as_blocks(rows) for row in block.rows()
        ]
        batch = Batch(
            batch_id=info.batch_id,
            source_key=info.source_key,
            file_name=info.file_name,
            content_hash=info.content_hash,
            row_count=len(records),
            captured_at=info.captured_at,
            status=BatchStatus.CAPTURED,
        )
        with self._lock:
            self._refuse_duplicate(info.content_hash)
            self._batches[batch.batch_id] = batch
            self._raw[batch.batch_id] = records
        return batch

    def _refuse_duplicate(self, content_hash: str) -> None:
        existing = self.find_batch(content_hash)
        if existing is not None:
            raise DuplicateBatch(content_hash, existing.batch_id)

    def normalize_batch(
        self, batch_id: str, normalizer: Normalizer, accept: Accept
    ) -> NormalizeOutcome:
        """Replace the batch's source's trades with this batch's, if `accept` agrees."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise BatchNotFound(batch_id)
            tally = NormalizeTally()
            trades: list[StoredTrade] = []
            rejects: list[RejectRecord] = []
            for record in self._raw[batch_id]:
                result = normalizer(record.row.raw_line)
                tally.add(result)
                line = record.row.line_number
                if isinstance(result, Reject):
                    rejects.append(
                        RejectRecord(
                            batch_id, line, result.reason, result.message, record.row.raw_line
                        )
                    )
                else:
                    trades.append(StoredTrade(batch_id, batch.source_key, line, result))
            quality = tally.quality()
            counts = {"trade_count": len(trades), "reject_count": len(rejects)}
            replaced: tuple[Replacement, ...] = ()
            if accept(quality):
                new_per_date = Counter(t.trade.trade_date for t in trades)
                kept, lost = [], Counter[tuple[str, date]]()
                for t in self._trades.get(batch.source_key, []):
                    if t.batch_id == batch_id:
                        continue
                    if t.trade.trade_date in new_per_date:
                        lost[t.batch_id, t.trade.trade_date] += 1
                    else:
                        kept.append(t)
                replaced = replacements(((b, d, n) for (b, d), n in lost.items()), new_per_date)
                dates = set(new_per_date)
                self._trades[batch.source_key] = kept + trades
                self._rejects[batch_id] = rejects
                batch = dataclasses.replace(
                    batch,
                    status=BatchStatus.NORMALIZED,
                    detail=None,
                    affected_dates=tuple(sorted(dates)),
                    **counts,
                )
            else:
                batch = dataclasses.replace(
                    batch,
                    status=BatchStatus.GATE_FAILED,
                    detail=refusal_detail(quality),
                    affected_dates=(),
                    **counts,
                )
            self._batches[batch_id] = batch
            accepted = batch.status is BatchStatus.NORMALIZED
            return NormalizeOutcome(batch, quality, accepted, replaced)

    def recompute_daily_metrics(self, dates: Collection[date], accept: Accept) -> MetricsOutcome:
        """Recompute the dates' metrics from the trades, keeping them only if `accept` agrees."""
        wanted = set(dates)
        with self._lock:
            trades = (
                ((t.source_key, t.line_number), t.trade)
                for source in self._trades.values()
                for t in source
                if t.trade.trade_date in wanted
            )
            fresh = compute_daily_metrics(trades)
            quality = check_sanity(fresh)
            accepted = accept(quality)
            if accepted:
                days = {d.isoformat() for d in wanted}
                self._metrics = {k: v for k, v in self._metrics.items() if k[0] not in days}
                self._metrics.update({(m.trade_date, m.symbol): m for m in fresh})
        return MetricsOutcome(tuple(sorted(wanted)), quality, accepted)

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
        low = date_from.isoformat() if date_from else ""
        high = date_to.isoformat() if date_to else "9999-99-99"
        with self._lock:
            found = [
                m
                for _, m in sorted(self._metrics.items())
                if symbol in (None, m.symbol) and low <= m.trade_date <= high
            ]
        return found[offset:] if limit is None else found[offset : offset + limit]

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
        with self._lock:
            found = [
                t
                for source in self._trades.values()
                for t in source
                if symbol in (None, t.trade.symbol)
                and trade_date in (None, t.trade.trade_date)
                and venue in (None, t.trade.venue)
                and batch_id in (None, t.batch_id)
            ]
        found.sort(
            key=lambda t: (t.trade.trade_date, t.trade.trade_time, t.source_key, t.line_number)
        )
        return found[offset : offset + limit]

    def query_rejects(
        self,
        batch_id: str,
        *,
        reason: RejectReason | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RejectRecord]:
        """A batch's rejected rows in line order."""
        with self._lock:
            found = [r for r in self._rejects.get(batch_id, []) if reason in (None, r.reason)]
        return found[offset : offset + limit]

    def reject_counts(self, batch_id: str) -> dict[str, int]:
        """How many of the batch's rows were rejected, per reason code."""
        with self._lock:
            counts = Counter(r.reason.value for r in self._rejects.get(batch_id, []))
        return dict(sorted(counts.items()))

    def table_counts(self) -> dict[str, int]:
        """Row count of each OTC table."""
        with self._lock:
            return {
                "otc_batches": len(self._batches),
                "otc_trades_raw": sum(len(rows) for rows in self._raw.values()),
                "otc_trades": sum(len(trades) for trades in self._trades.values()),
                "otc_rejects": sum(len(rejects) for rejects in self._rejects.values()),
                "otc_metrics_daily": len(self._metrics),
            }
