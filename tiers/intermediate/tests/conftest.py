from __future__ import annotations

import pytest

from spine_intermediate.testing import require_postgres as _require_postgres
from spine_intermediate.testing import temporary_database


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
