"""SQLite benchmarks: the basic tier's runtime against sqlite3 doing the bare minimum."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import metrics_sql, noop, plain_daily
from bench.common import Config, csv_rows, otc_file, percentile, scratch_dir, sqlite_file
from bench.harness import Figure, Outcome, repeat, timed


def _runtime(db: Path) -> Any:
    from spine_basic.tier import TIER
    from spine_core.tier import Settings

    return TIER.open_runtime(Settings(f"sqlite:///{db}"))


def _submit(runtime: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    execution = runtime.dispatcher.submit(name, params)
    if execution.status.value != "completed":
        raise RuntimeError(f"{name} ended {execution.status.value}: {execution.error}")
    return execution.result["outputs"][name]


def ingest_normalize(runtime: Any, path: Path) -> str:
    """`otc.ingest` then `otc.normalize`, as `spine run` submits them; the batch id."""
    batch_id = _submit(runtime, "otc.ingest", {"file": str(path)})["batch_id"]
    _submit(runtime, "otc.normalize", {"batch_id": batch_id})
    return batch_id


def _raw_connection(path: Path) -> sqlite3.Connection:
    """sqlite3 set up as the product sets its connection up: WAL, synchronous NORMAL."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def bench_ingest_normalize(cfg: Config) -> Outcome:
    path = otc_file(cfg.rows)

    def product() -> float:
        with scratch_dir() as d:
            runtime = _runtime(sqlite_file(d))
            try:
                return cfg.rows / timed(lambda: ingest_normalize(runtime, path))
            finally:
                runtime.close()

    def baseline() -> float:
        with scratch_dir() as d:
            conn = _raw_connection(d / "raw.db")
            conn.execute(
                "CREATE TABLE trades (venue TEXT, symbol TEXT, date TEXT, time TEXT, "
                "short_type TEXT, size TEXT, price TEXT, link TEXT)"
            )

            def load() -> None:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    ((row + [""] * 8)[:8] for row in csv_rows(path)),
                )
                conn.execute("COMMIT")

            try:
                return cfg.rows / timed(load)
            finally:
                conn.close()

    prod, base = repeat(cfg.runs, product, baseline, "rows/s")
    return Outcome(
        "ingest_normalize_sqlite",
        prod,
        base,
        higher_is_better=True,
        target=0.5,
        notes={"rows": cfg.rows, "product_seconds": cfg.rows / prod.median},
    )


def bench_daily(cfg: Config) -> Outcome:
    """The whole `otc.daily` against the plain script of `bench.plain_daily`, both on SQLite."""
    path = otc_file(cfg.rows)

    def product() -> float:
        with scratch_dir() as d:
            runtime = _runtime(sqlite_file(d))
            try:
                return cfg.rows / timed(lambda: _workflow(runtime, path))
            finally:
                runtime.close()

    def baseline() -> float:
        with scratch_dir() as d:
            return cfg.rows / timed(lambda: plain_daily.run_sqlite(path, d / "plain.db"))

    prod, base = repeat(cfg.runs, product, baseline, "rows/s")
    return Outcome(
        "daily_sqlite",
        prod,
        base,
        higher_is_better=True,
        target=0.5,
        notes={"rows": cfg.rows, "product_seconds": cfg.rows / prod.median},
    )


def _workflow(runtime: Any, path: Path) -> None:
    execution = runtime.dispatcher.submit("otc.daily", {"file": str(path)})
    if execution.status.value != "completed":
        raise RuntimeError(f"otc.daily ended {execution.status.value}: {execution.error}")


def bench_metrics(cfg: Config) -> Outcome:
    path = otc_file(cfg.rows)
    with scratch_dir() as d:
        db = sqlite_file(d)
        runtime = _runtime(db)
        conn = _raw_connection(db)
        try:
            batch_id = ingest_normalize(runtime, path)
            dates = [row[0] for row in conn.execute("SELECT DISTINCT trade_date FROM otc_trades")]
            trades = conn.execute("SELECT COUNT(*) FROM otc_trades").fetchone()[0]
            conn.execute("CREATE TABLE bench_metrics AS SELECT * FROM otc_metrics_daily WHERE 0")
            insert = (
                f"INSERT INTO bench_metrics ({metrics_sql.COLUMNS})\n"
                + metrics_sql.baseline_select(["?"] * len(dates))
            )

            def product() -> float:
                return timed(lambda: _submit(runtime, "otc.metrics.daily", {"batch_id": batch_id}))

            def baseline() -> float:
                def go() -> None:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("DELETE FROM bench_metrics")
                    conn.execute(insert, dates)
                    conn.execute("COMMIT")

                return timed(go)

            prod, base = repeat(cfg.runs, product, baseline, "s")
            order = f"SELECT {metrics_sql.COLUMNS} FROM {{}} ORDER BY trade_date, symbol"
            same = metrics_sql.same_metrics(
                conn.execute(order.format("otc_metrics_daily")).fetchall(),
                conn.execute(order.format("bench_metrics")).fetchall(),
            )
        finally:
            conn.close()
            runtime.close()
    return Outcome(
        "metrics_daily_sqlite",
        prod,
        base,
        higher_is_better=False,
        target=1.0,
        notes={"trades": trades, "dates": len(dates), "baseline_matches_product": same},
    )


def bench_dispatch(cfg: Config) -> Outcome:
    n = cfg.dispatch_jobs
    latencies: dict[str, list[float]] = {"product": [], "baseline": []}

    def product() -> float:
        with scratch_dir() as d:
            runtime = _runtime(sqlite_file(d))
            runtime.registry.add(noop.noop)
            submit = runtime.dispatcher.submit
            lat: list[float] = []
            try:
                start = time.perf_counter()
                for _ in range(n):
                    t0 = time.perf_counter()
                    execution = submit(noop.NAME)
                    lat.append(time.perf_counter() - t0)
                    if execution.status.value != "completed":
                        raise RuntimeError(f"no-op ended {execution.status.value}")
                elapsed = time.perf_counter() - start
            finally:
                runtime.close()
        latencies["product"] += lat
        return n / elapsed

    def baseline() -> float:
        with scratch_dir() as d:
            conn = _raw_connection(d / "raw.db")
            conn.execute(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "status TEXT NOT NULL, created_at TEXT NOT NULL, finished_at TEXT)"
            )
            lat: list[float] = []
            try:
                start = time.perf_counter()
                for _ in range(n):
                    t0 = time.perf_counter()
                    job = conn.execute(
                        "INSERT INTO jobs (name, status, created_at) "
                        "VALUES ('noop', 'running', strftime('%Y-%m-%dT%H:%M:%f', 'now'))"
                    ).lastrowid
                    conn.execute(
                        "UPDATE jobs SET status = 'completed', "
                        "finished_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') WHERE id = ?",
                        (job,),
                    )
                    lat.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - start
            finally:
                conn.close()
        latencies["baseline"] += lat
        return n / elapsed

    prod, base = repeat(cfg.runs, product, baseline, "exec/s")
    notes: dict[str, Any] = {
        "executions": n,
        "in_memory_ledger_exec_s": _in_memory_dispatch_rate(n),
    }
    for side, values in latencies.items():
        notes[f"{side}_p50_ms"] = percentile(values, 50) * 1000
        notes[f"{side}_p99_ms"] = percentile(values, 99) * 1000
    return Outcome(
        "dispatch_sync_sqlite", prod, base, higher_is_better=True, target=0.5, notes=notes
    )


def _in_memory_dispatch_rate(n: int) -> float:
    """The same dispatcher and engine over core's in-memory ledger: the ceiling without I/O."""
    from spine_core.backend import InlineBackend
    from spine_core.capabilities import capabilities_up_to
    from spine_core.dispatcher import Dispatcher
    from spine_core.memory import InMemoryLedgerStore
    from spine_core.registry import Registry
    from spine_core.runner import ExecutionRunner

    capabilities = capabilities_up_to("market-spine-basic")
    store, registry = InMemoryLedgerStore(), Registry(load_entry_points=False)
    registry.add(noop.noop)
    runner = ExecutionRunner(store, registry, capabilities, "basic")
    dispatcher = Dispatcher(store, InlineBackend(runner), registry, capabilities, "basic")
    return n / timed(lambda: [dispatcher.submit(noop.NAME) for _ in range(n)])


def _growth(name: str, job: Callable[[Any, Path], object], cfg: Config) -> Outcome:
    """Per-row cost of `job` at three sizes; the figure is the largest against the middle."""
    small, middle, large = cfg.growth_rows
    figures = {size: Figure("us/row") for size in cfg.growth_rows}
    paths = {size: otc_file(size) for size in cfg.growth_rows}

    def per_row(size: int) -> float:
        with scratch_dir() as d:
            runtime = _runtime(sqlite_file(d))
            try:
                seconds = timed(lambda: job(runtime, paths[size]))
            finally:
                runtime.close()
        return seconds / size * 1e6

    for _ in range(cfg.runs):
        for size in cfg.growth_rows:
            figures[size].samples.append(per_row(size))
    return Outcome(
        name,
        figures[large],
        figures[middle],
        higher_is_better=False,
        target=1.2,
        notes={
            "rows": list(cfg.growth_rows),
            "us_per_row": {str(size): fig.summary() for size, fig in figures.items()},
            "ratio_vs_smallest": figures[large].median / figures[small].median,
            "product_is": f"{large:,} rows",
            "baseline_is": f"{middle:,} rows (same product)",
        },
    )


def bench_ingest_growth(cfg: Config) -> Outcome:
    """Per-row `otc.ingest` cost: the raw capture alone."""
    return _growth(
        "ingest_growth",
        lambda runtime, path: _submit(runtime, "otc.ingest", {"file": str(path)}),
        cfg,
    )


def bench_daily_growth(cfg: Config) -> Outcome:
    """Per-row cost of the whole `otc.daily`: capture, normalize into the trades, metrics."""
    return _growth("daily_growth", _workflow, cfg)
