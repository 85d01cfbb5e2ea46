from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spine_basic.database import SqliteDatabase
from spine_basic.migrations import migrate


def init_db(path: Path) -> Path:
    database = SqliteDatabase(path, create=True)
    try:
        migrate(database.conn)
    finally:
        database.close()
    return path


@pytest.fixture(autouse=True)
def basic_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the basic tier: the workspace also installs higher tiers, which would outrank it."""
    monkeypatch.setenv("SPINE_TIER", "basic")


@pytest.fixture
def make_db():
    """Migrate a database file and return its path."""
    return init_db


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database file."""
    return init_db(tmp_path / "spine.db")


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database, named by SPINE_DATABASE_URL, with cwd in tmp_path."""
    path = init_db(tmp_path / "spine.db")
    url = f"sqlite:///{path}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPINE_DATABASE_URL", url)
    yield url
