"""Test helpers: throwaway PostgreSQL databases for this tier's tests and the tiers above it.

`SPINE_TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`) is the admin
URL. Without a server, tests skip with the reason, unless `SPINE_REQUIRE_SERVICES=1`, where
they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel

from spine_core import PipelineContext, Registry, Step, StepResult, Workflow, pipeline
from spine_core.retry import RetryPolicy
from spine_intermediate.pg.connect import redact_url, with_database
from spine_intermediate.pg.loop import AsyncBridge
from spine_intermediate.pg.migrations import migrate

ADMIN_URL_ENV = "SPINE_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    """The admin URL tests create their databases through."""
    return os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def services_required() -> bool:
    """True when missing services must fail tests instead of skipping them."""
    return os.environ.get("SPINE_REQUIRE_SERVICES") == "1"


def postgres_unavailable_reason() -> str | None:
    """None if the admin URL answers, else why not (no password in it)."""
    bridge = AsyncBridge("spine-test-probe")
    try:

        async def probe() -> None:
            conn = await asyncpg.connect(dsn=admin_url(), timeout=3)
            await conn.close()

        bridge.call(probe())
    except Exception as exc:
        return f"PostgreSQL not reachable at {redact_url(admin_url())}: {type(exc).__name__}: {exc}"
    finally:
        bridge.close()
    return None


_probed: list[str | None] = []


def require_postgres() -> None:
    """Skip the calling test if PostgreSQL is unreachable; fail it if SPINE_REQUIRE_SERVICES=1.

    The server is probed once per process.
    """
    import pytest

    if not _probed:
        _probed.append(postgres_unavailable_reason())
    reason = _probed[0]
    if reason:
        if services_required():
            pytest.fail(f"SPINE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@contextmanager
def temporary_database(*, migrated: bool = True, admin: str | None = None) -> Iterator[str]:
    """Create `spine_test_<random>`, optionally migrate it, yield its URL, drop it.

    `admin` is the server's admin URL, by default the shared test server's.
    """
    admin = admin or admin_url()
    name = f"spine_test_{uuid.uuid4().hex[:12]}"
    url = with_database(admin, name)
    bridge = AsyncBridge("spine-test-admin")

    async def create() -> None:
        conn = await asyncpg.connect(dsn=admin, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        if migrated:
            db = await asyncpg.connect(dsn=url, timeout=5)
            try:
                await migrate(db)
            finally:
                await db.close()

    async def drop() -> None:
        conn = await asyncpg.connect(dsn=admin, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        bridge.call(create())
        yield url
    finally:
        try:
            bridge.call(drop())
        finally:
            bridge.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin(program: str) -> str | None:
    """The path of a PostgreSQL server program (`initdb`, `pg_ctl`), if one is installed."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    return found[-1] if found else shutil.which(program)


class OwnPostgres:
    """A private PostgreSQL server in a temporary folder, for tests that must restart one.

    It listens on a free port on 127.0.0.1 with trust auth, so the shared server is never
    touched. initdb refuses to run as root, so as root the server runs as `postgres`.
    """

    def __init__(self) -> None:
        initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("initdb/pg_ctl not found under /usr/lib/postgresql/*/bin")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.folder = Path(tempfile.mkdtemp(prefix="spine-own-pg-"))
        self.data = self.folder / "data"

    def _run(self, *argv: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()}\n{tail}")

    def _ctl(self, *action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        log = str(self.folder / "server.log")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", log, "-o", options, "-w", *action)

    def __enter__(self) -> OwnPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        try:
            self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres")
            self.start()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: every open connection is dropped)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Fast restart: every open connection is dropped."""
        self._ctl("-m", "fast", "restart")

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class ServerThread:
    """uvicorn serving an app in a background thread on a free port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def spine_env(db_url: str, **extra: str) -> dict[str, str]:
    """Environment for a `spine` subprocess against `db_url`, with the test pipelines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
    env.update(
        {
            "SPINE_DATABASE_URL": db_url,
            "SPINE_TIER": "intermediate",
            "SPINE_PIPELINE_MODULES": "spine_intermediate.testing:register_test_pipelines",
        }
    )
    env.update(extra)
    return env


def spine_cmd(*args: str) -> list[str]:
    """Argv running the `spine` CLI with this interpreter."""
    return [sys.executable, "-m", "spine_basic.cli", *args]


# -- pipelines for worker tests
# SPINE_PIPELINE_MODULES=spine_intermediate.testing:register_test_pipelines


class SleepParams(BaseModel):
    """Params of `test.sleep`."""

    seconds: float = 0.0
    n: int = 0


@pipeline("test.noop")
def noop(params: BaseModel, ctx: PipelineContext) -> StepResult:
    """Do nothing."""
    return StepResult.ok({"ok": True})


@pipeline("test.sleep", params=SleepParams)
def sleep(params: SleepParams, ctx: PipelineContext) -> StepResult:
    """Sleep `seconds`."""
    time.sleep(params.seconds)
    return StepResult.ok({"slept": params.seconds, "n": params.n})


class ChoiceParams(BaseModel):
    """Params of `test.choice`."""

    size: int = 0


CHOICE = Workflow(
    "test.choice",
    (
        Step.lambda_("measure", lambda ctx: {"big": ctx.params["size"] > 10}),
        Step.choice(
            "route",
            lambda ctx: ctx.output("measure")["big"],
            Step.lambda_("big_path", lambda ctx: "big"),
            Step.lambda_("small_path", lambda ctx: "small"),
        ),
    ),
    params_model=ChoiceParams,
)


class CountedParams(BaseModel):
    """Params of `test.counted`: where steps count their runs, which step kills its worker."""

    dir: str
    kill_in: str | None = None
    fail_in: str | None = None
    pause: float = 0.0


def _counted_step(name: str) -> Step:
    """Appends its name to `dir/calls.txt` (one line per run), so tests count runs per step.

    In `kill_in` it SIGKILLs its own worker process on its first run; in `fail_in` it raises
    `ConnectionError` on its first run. Each run takes `pause` seconds, so a test can act
    while the workflow is mid-run.
    """

    def body(ctx: Any) -> dict[str, str]:
        folder = Path(ctx.params["dir"])
        with (folder / "calls.txt").open("a", encoding="utf-8") as calls:
            calls.write(name + "\n")
        first = not (folder / f"{name}.once").exists()
        (folder / f"{name}.once").touch()
        time.sleep(ctx.params.get("pause", 0.0))
        if first and ctx.params.get("kill_in") == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if first and ctx.params.get("fail_in") == name:
            raise ConnectionError(f"{name}: the database went away")
        return {"step": name}

    return Step.lambda_(name, body)


COUNTED = Workflow(
    "test.counted",
    tuple(_counted_step(n) for n in ("one", "two", "three", "four")),
    params_model=CountedParams,
)


class RetriedParams(BaseModel):
    """Params of `test.retried`: step two fails `failures` times with ConnectionError."""

    dir: str
    failures: int = 2


def _count(ctx: Any, name: str) -> int:
    """Record one run of `name`; how many runs it has had, this one included."""
    with (Path(ctx.params["dir"]) / "calls.txt").open("a", encoding="utf-8") as calls:
        calls.write(name + "\n")
    return step_calls(Path(ctx.params["dir"])).count(name)


def _retried_two(ctx: Any) -> dict[str, int]:
    runs = _count(ctx, "two")
    if runs <= ctx.params["failures"]:
        raise ConnectionError(f"two: attempt {runs} could not connect")
    return {"runs": runs}


RETRIED = Workflow(
    "test.retried",
    (
        Step.lambda_("one", lambda ctx: _count(ctx, "one")),
        Step.lambda_("two", _retried_two, retry=RetryPolicy(max_attempts=3, initial_interval=0.2)),
        Step.lambda_("three", lambda ctx: _count(ctx, "three")),
    ),
    params_model=RetriedParams,
)


WAITS = Workflow(
    "test.waits",
    (
        Step.lambda_("one", lambda ctx: _count(ctx, "one")),
        Step.wait("pause", 1.0),
        Step.lambda_("two", lambda ctx: _count(ctx, "two")),
    ),
    params_model=RetriedParams,
)


WAITS_LONG = Workflow(
    "test.waits_long",
    (
        Step.lambda_("one", lambda ctx: _count(ctx, "one")),
        Step.wait("pause", 3.0),
        Step.lambda_("two", lambda ctx: _count(ctx, "two")),
    ),
    params_model=RetriedParams,
)
"""Long enough a wait for a test to kill the worker in the middle of it."""


class MapParams(BaseModel):
    """Params of `test.map`: `n` items; each run is counted in `dir`; `kill_at` SIGKILLs."""

    n: int
    dir: str | None = None
    kill_at: int | None = None


def _square(ctx: Any) -> int:
    """Counts its run as `item<i>`; the first run of item `kill_at` kills its own worker."""
    item = ctx.params["item"]
    if ctx.params.get("dir"):
        runs = _count(ctx, f"item{item}")
        if runs == 1 and ctx.params.get("kill_at") == item:
            os.kill(os.getpid(), signal.SIGKILL)
    return item * item


MAPPED = Workflow(
    "test.map",
    (
        Step.lambda_("items", lambda ctx: list(range(ctx.params["n"]))),
        Step.map("each", lambda ctx: ctx.output("items"), Step.lambda_("square", _square), 8),
        Step.lambda_("total", lambda ctx: sum(ctx.output("each"))),
    ),
    params_model=MapParams,
)


VERSIONED = tuple(
    Workflow("test.versioned", (Step.lambda_("which", lambda ctx, v=v: v),), version=v)
    for v in (1, 2)
)
"""Two versions of one workflow, for `spine list` and pinning."""


def step_calls(folder: Path) -> list[str]:
    """The steps `test.counted` ran in `folder`, in order, one entry per run."""
    path = Path(folder) / "calls.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def register_test_pipelines(registry: Registry) -> None:
    """Add `test.noop`, `test.sleep` and the workflows the worker tests run."""
    registry.add(noop, sleep, CHOICE, COUNTED, RETRIED, WAITS, WAITS_LONG, MAPPED, *VERSIONED)
