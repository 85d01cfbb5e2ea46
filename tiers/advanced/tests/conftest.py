from __future__ import annotations

import pytest

from spine_intermediate.testing import require_postgres as _require_postgres
from spine_intermediate.testing import temporary_database


@pytest.fixture
def empty_pg_url():
    """A fresh database with no schema."""
    _require_postgres()
    with temporary_database(migrated=False) as url:
        yield url


@pytest.fixture
def intermediate_pg_url():
    """A fresh database migrated by the intermediate chain only (as intermediate leaves it)."""
    _require_postgres()
    with temporary_database() as url:
        yield url
