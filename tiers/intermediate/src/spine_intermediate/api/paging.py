"""Cursor paging over id-ordered listings (executions, dead letters).

A listing asks its store for `limit + 1` rows, newest first: the extra row only says that
another page exists, and the last row shown is the cursor that fetches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class HasId(Protocol):
    """A row whose id sorts by creation time."""

    id: str


T = TypeVar("T", bound=HasId)


def cursor_page(rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
    """The first `limit` rows, and the cursor of the next page (None on the last one)."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return shown, shown[-1].id if more and shown else None
