"""The FINRA Monthly Short Sale Transaction file layout: the one format the OTC domain reads."""

from __future__ import annotations

import re

DELIMITER = "|"
HEADER_FIELDS = (
    "MarketCenter",
    "Symbol",
    "Date",
    "Time",
    "ShortType",
    "Size",
    "Price",
    "LinkIndicator",
)
HEADER_LINE = DELIMITER.join(HEADER_FIELDS)
FIELD_COUNT = len(HEADER_FIELDS)
REQUIRED_FIELD_COUNT = 7
"""Every field but LinkIndicator must be non-blank."""

VENUES = {
    "Q": "Nasdaq Carteret TRF",
    "B": "Nasdaq Chicago TRF",
    "N": "NYSE TRF",
    "D": "ADF",
    "O": "ORF",
}
"""MarketCenter codes and the trade reporting facility each one names."""

SHORT_TYPES = {"S": "short sale", "E": "short exempt"}

SYMBOL_PATTERN = re.compile(r"[A-Z0-9./]{1,14}")

SESSION_START = "04:00:00"
SESSION_END = "20:00:00"
"""Reported trades must fall within this window (US/Eastern), both ends included."""

REGULAR_HOURS_START = "09:30:00"
REGULAR_HOURS_END = "16:00:00"
"""Regular trading hours: start included, end excluded."""


def is_regular_hours(trade_time: str) -> bool:
    """Whether an `HH:MM:SS` time falls in regular trading hours."""
    return REGULAR_HOURS_START <= trade_time < REGULAR_HOURS_END
