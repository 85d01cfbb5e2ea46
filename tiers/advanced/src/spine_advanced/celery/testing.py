"""Test helpers for the Celery backend: broker probes, a worker subprocess, a private Redis.

The shared brokers are `SPINE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/5`; the Celery
tests own databases 5 to 8) and `SPINE_TEST_AMQP_URL` (default RabbitMQ's guest account on
127.0.0.1). Without them the tests skip with the reason, unless `SPINE_REQUIRE_SERVICES=1`.
A test that restarts a broker starts its own (`OwnRedis`) on a spare port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from spine_intermediate.pg.connect import redact_url
from spine_intermediate.testing import free_port, services_required, spine_cmd, spine_env

REDIS_URL = os.environ.get("SPINE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/5"
AMQP_URL = os.environ.get("SPINE_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672//"


def broker_unavailable_reason(url: str) -> str | None:
    """None if the broker at `url` takes a connection within 2 seconds, else why not."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        return f"broker not reachable at {redact_url(url)}: {type(exc).__name__}: {exc}"
    return None


def require(reason: str | None) -> None:
    """Skip the calling test for `reason`; fail it instead if SPINE_REQUIRE_SERVICES=1."""
    import pytest

    if reason:
        if services_required():
            pytest.fail(f"SPINE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


def celery_env(db_url: str, broker_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """`spine` subprocess environment on the Celery backend, a fresh queue, short leases."""
    settings = {
        "SPINE_TIER": "advanced",
        "SPINE_BACKEND": "celery",
        "SPINE_BROKER_URL": broker_url,
        "SPINE_CELERY_QUEUE": f"spine-test-{uuid.uuid4().hex[:10]}",
        "SPINE_LEASE_SECONDS": "2",
        "SPINE_HEARTBEAT_INTERVAL": "0.5",
        "SPINE_REDELIVER_AFTER": "1",
    }
    return spine_env(db_url, **{**settings, **extra})


def options_of(env: dict[str, str]) -> dict[str, str]:
    """The `Settings.options` an in-process runtime needs to act like the subprocesses."""
    return {k[len("SPINE_") :].lower(): v for k, v in env.items() if k.startswith("SPINE_")}


class CeleryWorker:
    """`spine worker start --backend celery` in its own process group; ready once it says so."""

    def __init__(
        self, env: dict[str, str], concurrency: int = 2, args: tuple[str, ...] = ()
    ) -> None:
        self.env = env
        self.concurrency = concurrency
        self.args = args
        self._log = tempfile.NamedTemporaryFile(prefix="spine-celery-", suffix=".log")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> str:
        """Everything the worker printed so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def start(self, timeout: float = 20) -> CeleryWorker:
        """Start it and wait until its reaper runs (the pool processes are up by then)."""
        self.proc = subprocess.Popen(
            spine_cmd("worker", "start", "--concurrency", str(self.concurrency), *self.args),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while "reaper running" not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the Celery worker did not start:\n{self.output[-3000:]}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and every pool process."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM to the main process (Celery's warm shutdown); its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            self._log.close()


class OwnRedis:
    """A private `redis-server` on a spare port without persistence: a restart loses messages."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def unavailable_reason() -> str | None:
        """None if `redis-server` is installed."""
        return None if shutil.which("redis-server") else "redis-server is not installed"

    def start(self, timeout: float = 10) -> None:
        """Start it and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while broker_unavailable_reason(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill it: everything it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """Kill and start again on the same port, empty."""
        self.stop()
        self.start()

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
