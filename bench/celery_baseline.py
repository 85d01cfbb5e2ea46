"""Raw Celery on this machine's Redis: the baseline the durable engine is measured against.

A real worker process (prefork, the settings a user would run) on its own queue and its own
Redis database, so the figures are Celery's own: no ledger, no checkpoints, results through the
Redis result backend. Each measurement returns one sample; `repeat` interleaves them with the
product's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery, chain, chord

REDIS_URL = os.environ.get("SPINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
"""Redis database 13 is the benchmarks' own; the tests use other numbers."""

PREFETCH_ENV = "SPINE_BENCH_CELERY_PREFETCH"
"""The worker's prefetch multiplier (4 unless set): the Celery-backend benchmark sets 1, as the
backend does, so both sides run with the same worker settings."""

QUEUE_ENV = "SPINE_BENCH_CELERY_QUEUE"
"""The run's own queue, the default for every task (a chain's later links included), so that
the client and the worker process agree on it without naming it per call."""

app = Celery("bench_celery", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=os.environ.get(QUEUE_ENV, "bench"),
    task_acks_late=True,
    worker_prefetch_multiplier=int(os.environ.get(PREFETCH_ENV, "4")),
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(value: object = None) -> object:
    return value


@app.task(name="bench.gather")
def gather(values: list[object]) -> int:
    return len(values)


class CeleryBaseline:
    """Runs the three shapes the engine is compared on, through one live worker."""

    def chain_ms_per_step(self, steps: int = 10, timeout: float = 60) -> float:
        start = time.perf_counter()
        chain(*(noop.si() for _ in range(steps)))().get(timeout)
        return (time.perf_counter() - start) * 1000 / steps

    def single_runs_per_second(self, n: int, timeout: float = 120) -> float:
        start = time.perf_counter()
        results = [noop.delay() for _ in range(n)]
        for result in results:
            result.get(timeout)
        return n / (time.perf_counter() - start)

    def chord_seconds(self, items: int, timeout: float = 120) -> float:
        start = time.perf_counter()
        result = chord(noop.si(i) for i in range(items))(gather.s())
        assert result.get(timeout) == items
        return time.perf_counter() - start


@contextmanager
def celery_worker(
    concurrency: int = 4, startup_timeout: float = 30, prefetch: int = 4
) -> Iterator[CeleryBaseline]:
    """A prefork Celery worker on a fresh queue; stopped (SIGTERM, then SIGKILL) on exit."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_baseline",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=root,
        env={**os.environ, QUEUE_ENV: queue, PREFETCH_ENV: str(prefetch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while not app.control.ping(destination=None, timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the Celery worker did not start: {error[-2000:]}")
        baseline = CeleryBaseline()
        baseline.chain_ms_per_step(2)
        yield baseline
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
