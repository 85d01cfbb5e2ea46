"""Market Spine's OTC domain: FINRA short-sale trade files, from raw rows to daily metrics."""

from importlib.metadata import version as _distribution_version

from spine_otc.errors import BatchNotFound, DuplicateBatch, FileChangedError, FileFormatError
from spine_otc.generator import GeneratedFile, generate
from spine_otc.memory import InMemoryOtcStore
from spine_otc.metrics import (
    METRIC_FIELDS,
    DailyMetrics,
    compute_daily_metrics,
    metrics_are_sane,
)
from spine_otc.normalize import NormalizeTally, Reject, RejectReason, Trade, normalize_line
from spine_otc.parser import PsvReader, RawRow, file_sha256
from spine_otc.sample import sample_path
from spine_otc.store import (
    Batch,
    BatchStatus,
    CaptureInfo,
    MetricsOutcome,
    NormalizeOutcome,
    OtcStore,
    RejectRecord,
    StoredTrade,
)

__version__ = _distribution_version("spine-otc")

__all__ = [
    "METRIC_FIELDS",
    "Batch",
    "BatchNotFound",
    "BatchStatus",
    "CaptureInfo",
    "DailyMetrics",
    "DuplicateBatch",
    "FileChangedError",
    "FileFormatError",
    "GeneratedFile",
    "InMemoryOtcStore",
    "MetricsOutcome",
    "NormalizeOutcome",
    "NormalizeTally",
    "OtcStore",
    "PsvReader",
    "RawRow",
    "Reject",
    "RejectReason",
    "RejectRecord",
    "StoredTrade",
    "Trade",
    "compute_daily_metrics",
    "file_sha256",
    "generate",
    "metrics_are_sane",
    "normalize_line",
    "sample_path",
]
