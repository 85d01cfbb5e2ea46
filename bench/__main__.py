"""`python -m bench`: run the benchmarks, print the table, write bench/results/latest.json.

The exit status reflects crashes only: a missed target is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import celery_backend, durable_suite, map_suite, memory, postgres_suite, sqlite_suite
from bench.common import DATA_DIR, Config, postgres_version
from bench.harness import Outcome, format_table, write_results

BENCHMARKS: dict[str, Callable[[Config], Outcome]] = {
    "daily_sqlite": sqlite_suite.bench_daily,
    "daily_postgres": postgres_suite.bench_daily,
    "ingest_normalize_sqlite": sqlite_suite.bench_ingest_normalize,
    "ingest_normalize_postgres": postgres_suite.bench_ingest_normalize,
    "metrics_daily_sqlite": sqlite_suite.bench_metrics,
    "metrics_daily_postgres": postgres_suite.bench_metrics,
    "dispatch_local_postgres": postgres_suite.bench_dispatch,
    "dispatch_sync_sqlite": sqlite_suite.bench_dispatch,
    "workflow_10_steps_postgres": durable_suite.bench_workflow_steps,
    "workflow_10_steps_vs_celery": durable_suite.bench_workflow_steps_vs_celery,
    "single_step_runs_vs_celery": durable_suite.bench_single_step_runs_vs_celery,
    "map_1000_vs_chord": map_suite.bench_map_vs_chord,
    "single_step_runs_celery_backend": celery_backend.bench_single_step_runs_celery_backend,
    "workflow_10_steps_celery_backend": celery_backend.bench_workflow_10_steps_celery_backend,
    "memory_streaming": memory.bench_memory,
    "ingest_growth": sqlite_suite.bench_ingest_growth,
    "daily_growth": sqlite_suite.bench_daily_growth,
}
RESULTS = Path(__file__).parent / "results" / "latest.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these (repeatable, or a comma list): " + ", ".join(BENCHMARKS),
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data, 1 run each: a smoke run, not figures"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="growth to 10,000,000 rows and memory at 100,000 against 10,000,000 (long)",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per side (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.quick and args.full:
        parser.error("--quick and --full exclude each other")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    args.names = [n for n in BENCHMARKS if not names or n in names]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cfg = Config.make(quick=args.quick, full=args.full, runs=args.runs)
    if not args.quick and cfg.runs < 3:
        print(f"note: --runs {cfg.runs}: figures below 3 runs are not medians worth quoting")
    outcomes: list[Outcome] = []
    crashed: list[str] = []
    seconds: dict[str, float] = {}
    for name in args.names:
        print(f"-- {name} ...", flush=True)
        start = time.perf_counter()
        try:
            outcome = BENCHMARKS[name](cfg)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        finally:
            seconds[name] = round(time.perf_counter() - start, 1)
        outcomes.append(outcome)
        print(f"   {outcome.ratio:.2f} (target {outcome.target_text()}) in {seconds[name]} s")
    print()
    print(format_table(outcomes))
    notes = [o for o in outcomes if o.notes]
    if notes:
        print()
        for o in notes:
            print(f"{o.name}: " + ", ".join(f"{k}={_short(v)}" for k, v in o.notes.items()))
    extra = {
        "config": {
            "quick": cfg.quick,
            "runs": cfg.runs,
            "rows": cfg.rows,
            "dispatch_jobs": cfg.dispatch_jobs,
            "memory_rows": cfg.memory_rows,
            "growth_rows": cfg.growth_rows,
            "worker_threads": cfg.workers,
            "data_dir": str(DATA_DIR),
        },
        "postgres": postgres_version(),
        "seconds": seconds,
        "crashed": crashed,
    }
    write_results(args.out, outcomes, extra)
    print(f"\nwrote {args.out}")
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
