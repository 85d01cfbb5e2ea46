"""Fixtures for every test in the repository."""

from __future__ import annotations

import pytest

from spine_otc.normalize import forget_seen_values


@pytest.fixture(autouse=True)
def _fresh_normalize_memos() -> None:
    """Each test starts with normalize's memos empty, so each reaches the rules it checks."""
    forget_seen_values()
