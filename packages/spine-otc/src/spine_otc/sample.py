"""The sample file shipped inside the package: a few thousand rows with some bad ones."""

from __future__ import annotations

from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

SAMPLE_FILE_NAME = "otc_sample.psv"
SAMPLE_ARGS: dict[str, Any] = {
    "rows": 3000,
    "days": 3,
    "symbols": 5,
    "seed": 20240304,
    "bad_rate": 0.003,
    "start_date": date(2024, 3, 4),
}
"""`generate` arguments that reproduce the sample byte for byte."""


def sample_path() -> Path:
    """Where the installed sample file is (3,000 rows, 5 symbols, 3 days, 0.3% bad rows)."""
    resource = files("spine_otc") / "data" / SAMPLE_FILE_NAME
    if not isinstance(resource, Path):
        raise RuntimeError("spine_otc is installed as a zip; the sample needs a real directory")
    return resource
