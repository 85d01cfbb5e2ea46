from __future__ import annotations

import pytest

from spine_intermediate.testing import (
    postgres_unavailable_reason,
    services_required,
    temporary_database,
)

_reason: str | None = None
_checked = False


def _require_postgres() -> None:
    global _reason, _checked
    if not _checked:
        _reason, _checked = postgres_unavailable_reason(), True
    if _reason:
        if services_required():
            pytest.fail(f"SPINE_REQUIRE_SERVICES=1 but {_reason}")
        pytest.skip(_reason)


@pytest.fixture
def pg_url():
    """A fresh, migrated database for one test."""
    _require_postgres()
    with temporary_database() as url:
        yield url


@pytest.fixture
def empty_pg_url():
    """A fresh database with no schema."""
    _require_postgres()
    with temporary_database(migrated=False) as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url():
    """A migrated database shared by one test module."""
    _require_postgres()
    with temporary_database() as url:
        yield url
