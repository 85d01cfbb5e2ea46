"""PostgreSQL benchmarks: the intermediate tier against asyncpg doing the bare minimum."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench import metrics_sql, noop, plain_daily
from bench.common import Config, csv_rows, otc_file, percentile, postgres_database
from bench.harness import Outcome, repeat, timed

RESET_OTC = (
    "TRUNCATE otc_metrics_daily, otc_rejects, otc_trades, otc_raw_lines, otc_batches CASCADE"
)


def _runtime(url: str, workers: int = 4) -> Any:
    from spine_core.tier import Settings
    from spine_intermediate.runtime import build_runtime
    from spine_intermediate.tier import TIER

    return build_runtime(TIER, Settings(url, {"workers": str(workers)}), concurrency=workers)


def _submit(runtime: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    execution = runtime.dispatcher.submit(name, params)
    if execution.status.value != "completed":
        raise RuntimeError(f"{name} ended {execution.status.value}: {execution.error}")
    return execution.result["outputs"][name]


def ingest_normalize(runtime: Any, path: Path) -> str:
    """What `spine run otc.ingest` then `spine run otc.normalize` do: run in this thread."""
    runtime.backend.run_on_submit = True
    batch_id = _submit(runtime, "otc.ingest", {"file": str(path)})["batch_id"]
    _submit(runtime, "otc.normalize", {"batch_id": batch_id})
    return batch_id


def _db(runtime: Any) -> Any:
    return runtime.extras["database"]


def bench_ingest_normalize(cfg: Config) -> Outcome:
    path = otc_file(cfg.rows)
    with postgres_database() as url:
        runtime = _runtime(url)
        db = _db(runtime)
        try:
            db.call(
                db.pool.execute(
                    "CREATE TABLE bench_trades (venue text, symbol text, date text, time text, "
                    "short_type text, size text, price text, link text)"
                )
            )

            def product() -> float:
                db.call(db.pool.execute(RESET_OTC))
                return cfg.rows / timed(lambda: ingest_normalize(runtime, path))

            def baseline() -> float:
                db.call(db.pool.execute("TRUNCATE bench_trades"))

                async def copy(records: list[list[str]]) -> None:
                    async with db.pool.acquire() as conn, conn.transaction():
                        await conn.copy_records_to_table("bench_trades", records=records)

                def load() -> None:
                    # csv parse in the calling thread, then one COPY in one transaction
                    db.call(copy([(row + [""] * 8)[:8] for row in csv_rows(path)]))

                return cfg.rows / timed(load)

            prod, base = repeat(cfg.runs, product, baseline, "rows/s")
        finally:
            runtime.close()
    return Outcome(
        "ingest_normalize_postgres",
        prod,
        base,
        higher_is_better=True,
        target=0.5,
        notes={"rows": cfg.rows, "product_seconds": cfg.rows / prod.median},
    )


def bench_daily(cfg: Config) -> Outcome:
    """The whole `otc.daily` (run as `spine run` runs it) against csv + COPY + one GROUP BY."""
    path = otc_file(cfg.rows)
    with postgres_database() as url:
        runtime = _runtime(url)
        runtime.backend.run_on_submit = True
        db = _db(runtime)
        try:
            db.call(
                db.pool.execute(
                    plain_daily.TRADES_DDL.format("plain_trades", num="double precision")
                    + "; "
                    + plain_daily.METRICS_DDL.replace("REAL", "double precision")
                )
            )
            insert = f"INSERT INTO plain_metrics ({metrics_sql.COLUMNS})\n" + (
                metrics_sql.baseline_select(None, "plain_trades")
            )

            async def load(records: list[tuple]) -> None:
                async with db.pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table("plain_trades", records=records)
                    await conn.execute(insert)

            def run() -> None:
                execution = runtime.dispatcher.submit("otc.daily", {"file": str(path)})
                if execution.status.value != "completed":
                    raise RuntimeError(f"otc.daily ended {execution.status.value}")

            def product() -> float:
                db.call(db.pool.execute(RESET_OTC))
                return cfg.rows / timed(run)

            def baseline() -> float:
                db.call(db.pool.execute("TRUNCATE plain_trades, plain_metrics"))
                return cfg.rows / timed(lambda: db.call(load(list(plain_daily.trade_rows(path)))))

            prod, base = repeat(cfg.runs, product, baseline, "rows/s")
        finally:
            runtime.close()
    return Outcome(
        "daily_postgres",
        prod,
        base,
        higher_is_better=True,
        target=0.5,
        notes={"rows": cfg.rows, "product_seconds": cfg.rows / prod.median},
    )


def bench_metrics(cfg: Config) -> Outcome:
    path = otc_file(cfg.rows)
    with postgres_database() as url:
        runtime = _runtime(url)
        db = _db(runtime)
        try:
            batch_id = ingest_normalize(runtime, path)
            dates = [
                r[0] for r in db.call(db.pool.fetch("SELECT DISTINCT trade_date FROM otc_trades"))
            ]
            trades = db.call(db.pool.fetchval("SELECT count(*) FROM otc_trades"))
            db.call(db.pool.execute("ANALYZE"))
            db.call(
                db.pool.execute("CREATE TABLE bench_metrics (LIKE otc_metrics_daily INCLUDING ALL)")
            )
            insert = f"INSERT INTO bench_metrics ({metrics_sql.COLUMNS})\n" + (
                metrics_sql.baseline_select([f"${i}" for i in range(1, len(dates) + 1)])
            )

            async def go() -> None:
                async with db.pool.acquire() as conn, conn.transaction():
                    await conn.execute("DELETE FROM bench_metrics")
                    await conn.execute(insert, *dates)

            def product() -> float:
                return timed(lambda: _submit(runtime, "otc.metrics.daily", {"batch_id": batch_id}))

            def baseline() -> float:
                return timed(lambda: db.call(go()))

            prod, base = repeat(cfg.runs, product, baseline, "s")
            order = f"SELECT {metrics_sql.COLUMNS} FROM {{}} ORDER BY trade_date, symbol"
            same = metrics_sql.same_metrics(
                [tuple(r) for r in db.call(db.pool.fetch(order.format("otc_metrics_daily")))],
                [tuple(r) for r in db.call(db.pool.fetch(order.format("bench_metrics")))],
            )
        finally:
            runtime.close()
    return Outcome(
        "metrics_daily_postgres",
        prod,
        base,
        higher_is_better=False,
        target=1.0,
        notes={"trades": trades, "dates": len(dates), "baseline_matches_product": same},
    )


def _wait_all(count: Any, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count()} of {n} executions completed in {timeout:.0f}s")
        time.sleep(0.005)


def bench_dispatch(cfg: Config) -> Outcome:
    """LocalBackend (N worker threads, the full ledger) against a bare SKIP LOCKED queue.

    Both sides submit from the main thread while N worker threads claim and complete, and both
    reach asyncpg the same way: threads hand coroutines to one event loop thread (the tier's
    `AsyncBridge`), so the ratio shows what the ledger, status machine, events, run history and
    engine add, not the sync-over-async design (whose hop is measured on its own in the notes).
    """
    n, workers = cfg.dispatch_jobs, cfg.workers
    latencies: dict[str, list[float]] = {"product": [], "baseline": []}
    timeout = max(120.0, n / 20)

    def product() -> float:
        with postgres_database() as url:
            runtime = _runtime(url, workers)
            runtime.registry.add(noop.noop)
            store = runtime.store
            try:
                runtime.backend.start()
                start = time.perf_counter()
                for _ in range(n):
                    runtime.dispatcher.submit(noop.NAME)
                _wait_all(lambda: store.count_by_status().get("completed", 0), n, timeout)
                elapsed = time.perf_counter() - start
                db = _db(runtime)
                rows = db.call(
                    db.pool.fetch(
                        "SELECT EXTRACT(EPOCH FROM finished_at - created_at) AS s FROM executions"
                    )
                )
                events = db.call(db.pool.fetchval("SELECT count(*) FROM execution_events"))
            finally:
                runtime.close()
        if events != 5 * n:  # created, queued, started, stage_completed, completed
            raise RuntimeError(f"expected {5 * n} events, found {events}")
        latencies["product"] += [float(r["s"]) for r in rows]
        return n / elapsed

    def baseline() -> float:
        from spine_intermediate.pg.connect import PgDatabase

        with postgres_database(migrated=False) as url:
            db = PgDatabase.connect(url, min_size=1, max_size=10)
            db.call(
                db.pool.execute(
                    "CREATE TABLE jobs (id bigserial PRIMARY KEY, name text NOT NULL, "
                    "status text NOT NULL, created_at timestamptz NOT NULL, "
                    "finished_at timestamptz); CREATE INDEX jobs_status ON jobs (status, id)"
                )
            )
            stop = threading.Event()
            wake = threading.Condition()
            submitted: dict[int, float] = {}
            finished: dict[int, float] = {}
            lock = threading.Lock()

            async def claim() -> int | None:
                async with db.pool.acquire() as conn, conn.transaction():
                    return await conn.fetchval(
                        "UPDATE jobs SET status = 'running' WHERE id = ("
                        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1 "
                        "FOR UPDATE SKIP LOCKED) RETURNING id"
                    )

            def work() -> None:
                while not stop.is_set():
                    job = db.call(claim())
                    if job is None:
                        with wake:
                            wake.wait(0.02)
                        continue
                    db.call(
                        db.pool.execute(
                            "UPDATE jobs SET status = 'completed', finished_at = now() "
                            "WHERE id = $1",
                            job,
                        )
                    )
                    with lock:
                        finished[job] = time.perf_counter()

            threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
            for t in threads:
                t.start()
            try:
                start = time.perf_counter()
                for _ in range(n):
                    t0 = time.perf_counter()
                    job = db.call(
                        db.pool.fetchval(
                            "INSERT INTO jobs (name, status, created_at) "
                            "VALUES ('noop', 'queued', now()) RETURNING id"
                        )
                    )
                    submitted[job] = t0
                    with wake:
                        wake.notify()
                _wait_all(lambda: len(finished), n, timeout)
                elapsed = time.perf_counter() - start
            finally:
                stop.set()
                for t in threads:
                    t.join(5)
                db.close()
        latencies["baseline"] += [finished[j] - submitted[j] for j in submitted]
        return n / elapsed

    prod, base = repeat(cfg.runs, product, baseline, "exec/s")
    notes: dict[str, Any] = {"executions": n, "worker_threads": workers}
    for side, values in latencies.items():
        notes[f"{side}_p50_ms"] = percentile(values, 50) * 1000
        notes[f"{side}_p99_ms"] = percentile(values, 99) * 1000
    notes.update(bridge_hop())
    return Outcome(
        "dispatch_local_postgres", prod, base, higher_is_better=True, target=0.5, notes=notes
    )


def bridge_hop(calls: int = 2000) -> dict[str, float]:
    """Median cost of one `SELECT 1` through the bridge against awaiting it on the loop itself."""
    from spine_intermediate.pg.connect import PgDatabase

    with postgres_database(migrated=False) as url:
        db = PgDatabase.connect(url, min_size=1, max_size=1)
        try:
            db.call(db.pool.fetchval("SELECT 1"))
            start = time.perf_counter()
            for _ in range(calls):
                db.call(db.pool.fetchval("SELECT 1"))
            bridged = (time.perf_counter() - start) / calls

            async def direct() -> float:
                begin = time.perf_counter()
                for _ in range(calls):
                    await db.pool.fetchval("SELECT 1")
                return (time.perf_counter() - begin) / calls

            awaited = db.call(direct())
        finally:
            db.close()
    return {
        "select1_bridged_us": bridged * 1e6,
        "select1_awaited_us": awaited * 1e6,
        "bridge_hop_us": (bridged - awaited) * 1e6,
    }
