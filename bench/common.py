"""What every benchmark shares: the run configuration, generated data, fresh databases."""

from __future__ import annotations

import asyncio
import csv
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from spine_otc.generator import generate

ADMIN_URL = os.environ.get("SPINE_BENCH_POSTGRES_URL") or os.environ.get(
    "SPINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATA_DIR = Path(os.environ.get("SPINE_BENCH_DATA", Path(tempfile.gettempdir()) / "spine-bench"))
DAYS = 20
"""A month of trading days, like a FINRA monthly file."""
SYMBOLS = 300
BAD_RATE = 0.001
"""A few rejects of every reason, well under the default 1% reject gate."""
SEED = 5


@dataclass(frozen=True)
class Config:
    """Sizes and repetitions for one `python -m bench` run."""

    runs: int
    quick: bool
    rows: int
    dispatch_jobs: int
    memory_rows: tuple[int, int]
    growth_rows: tuple[int, int, int]
    workers: int = 4

    @classmethod
    def make(cls, *, quick: bool, runs: int | None, full: bool = False) -> Config:
        if quick:
            return cls(
                runs=runs or 1,
                quick=True,
                rows=20_000,
                dispatch_jobs=300,
                memory_rows=(10_000, 50_000),
                growth_rows=(10_000, 20_000, 40_000),
            )
        return cls(
            runs=runs or 3,
            quick=False,
            rows=1_000_000,
            dispatch_jobs=10_000,
            memory_rows=(100_000, 10_000_000 if full else 2_000_000),
            growth_rows=(250_000, 1_000_000, 10_000_000 if full else 4_000_000),
        )


def otc_file(rows: int) -> Path:
    """A generated FINRA file of `rows` data rows, cached: the generator is deterministic."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"otc_{rows}_{DAYS}d_{SYMBOLS}s_{SEED}.psv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        generate(partial, rows=rows, days=DAYS, symbols=SYMBOLS, seed=SEED, bad_rate=BAD_RATE)
        partial.rename(path)
    return path


def csv_rows(path: Path) -> Iterator[list[str]]:
    """The baseline's parse: the csv module, header and trailer dropped, nothing validated."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="|")
        next(reader)
        previous = next(reader, None)
        for row in reader:
            if previous is not None:
                yield previous
            previous = row
        # `previous` is now the trailer (the record count): not a data row.


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary directory on the same disk as the data cache."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="run-") as name:
        yield Path(name)


def sqlite_file(directory: Path) -> Path:
    """A fresh, migrated basic-tier database file."""
    from spine_basic.tier import init_database
    from spine_core.tier import Settings

    path = directory / f"spine-{uuid.uuid4().hex[:8]}.db"
    init_database(Settings(f"sqlite:///{path}"))
    return path


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def postgres_database(*, migrated: bool = True) -> Iterator[str]:
    """Create `spine_bench_<random>` (migrated to the intermediate schema), yield its URL, drop."""
    import asyncpg

    from spine_intermediate.pg.connect import with_database
    from spine_intermediate.pg.migrations import migrate

    name = f"spine_bench_{uuid.uuid4().hex[:10]}"
    url = with_database(ADMIN_URL, name)

    async def create() -> None:
        admin = await asyncpg.connect(dsn=ADMIN_URL, timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        if migrated:
            conn = await asyncpg.connect(dsn=url, timeout=5)
            try:
                await migrate(conn)
            finally:
                await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(dsn=ADMIN_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(drop())


def postgres_version() -> str:
    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(dsn=ADMIN_URL, timeout=5)
        try:
            return await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except Exception as exc:  # the table still prints; the postgres benchmarks will fail
        return f"unreachable ({type(exc).__name__})"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
