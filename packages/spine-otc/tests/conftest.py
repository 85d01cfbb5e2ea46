"""Fixtures for spine-otc's tests."""

from __future__ import annotations

import pytest

from spine_otc.normalize import forget_seen_values


@pytest.fixture(autouse=True)
def _fresh_normalize_memos() -> None:
    """Each test starts with normalize's memos empty, so each reaches the rules it checks
    (and mutation testing sees a broken rule instead of a remembered answer)."""
    forget_seen_values()
