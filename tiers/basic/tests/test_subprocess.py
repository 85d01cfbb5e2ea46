"""The installed `spine` script, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from spine_otc.generator import generate
from spine_otc.metrics import METRIC_FIELDS
from spine_otc.sample import sample_path

REPO = Path(__file__).resolve().parents[3]


def spine_script() -> str:
    beside = Path(sys.executable).with_name("spine")
    found = str(beside) if beside.exists() else shutil.which("spine")
    if not found:
        pytest.skip("the spine script is not installed in this environment")
    return found


def run(args: list[str], cwd: Path, stdin: str | None = None, script: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
    env["SPINE_TIER"] = "basic"
    return subprocess.run(
        [script or spine_script(), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_spine_script_end_to_end(tmp_path):
    assert run(["db", "init"], tmp_path).returncode == 0
    done = run(["run", "otc.daily", "-p", f"file={sample_path()}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "otc.daily: completed" in done.stdout
    rows = json.loads(run(["query", "metrics", "--format", "json"], tmp_path).stdout)
    assert rows and list(rows[0]) == list(METRIC_FIELDS)
    shell = run(["shell"], tmp_path, stdin="print(store)\n")
    assert shell.returncode == 0 and "SqliteLedgerStore('spine.db')" in shell.stdout
    missing = run(["run", "nope"], tmp_path)
    assert missing.returncode == 1
    assert (
        missing.stderr.startswith("error: unknown pipeline") and "Traceback" not in missing.stderr
    )
    version = run(["--version"], tmp_path)
    assert f"market-spine-basic {metadata.version('market-spine-basic')}" in version.stdout


def test_otc_demo_script(tmp_path):
    for attempt in ("first", "second"):
        done = run(["otc", "demo"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert "otc.daily: completed" in done.stdout, attempt
        assert done.stdout.count("\n2024-03-0") == 15, attempt
    assert "nothing was added" in done.stdout
    assert (tmp_path / "spine.db").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [
            str(bindir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            str(REPO / "packages" / "spine-core"),
            str(REPO / "packages" / "spine-otc"),
            str(REPO / "tiers" / "basic"),
        ],
        check=True,
        timeout=600,
    )
    script = str(bindir / "spine")
    work = tmp_path / "work"
    work.mkdir()
    assert run(["db", "init"], work, script=script).returncode == 0
    sample = subprocess.run(
        [str(bindir / "python"), "-c", "from spine_otc import sample; print(sample.sample_path())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "site-packages" in sample
    done = run(["run", "otc.daily", "-p", f"file={sample}"], work, script=script)
    assert done.returncode == 0, done.stderr
    assert "otc.daily: completed" in done.stdout
    status = run(["status"], work, script=script)
    assert "otc_metrics_daily" in status.stdout


def test_output_cut_short_by_a_closed_pipe_ends_quietly(tmp_path):
    """`spine ... | head`: the reader is gone; no `error: BrokenPipeError`, exit 141 as SIGPIPE.

    The pipe's read end is closed before spine starts, so its first write fails for sure.
    """
    assert run(["db", "init"], tmp_path).returncode == 0
    assert run(["run", "otc.daily", "-p", f"file={sample_path()}"], tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
    env["SPINE_TIER"] = "basic"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        for args in (["query", "metrics", "--format", "json"], ["list"], ["--version"]):
            done = subprocess.run(
                [spine_script(), *args],
                cwd=tmp_path,
                env=env,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
            assert (done.returncode, done.stderr) == (141, ""), args
    finally:
        os.close(write_end)


# -- interrupted runs: Ctrl-C, SIGTERM and a hard kill leave no execution `running`


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """A file whose run takes a few seconds, long enough to be interrupted."""
    path = tmp_path_factory.mktemp("data") / "big.psv"
    generate(path, rows=300_000, days=3, symbols=50, seed=3)
    return path


def executions(folder: Path) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(folder / "spine.db") as conn:
        return conn.execute(
            "SELECT id, status, error, error_category FROM executions ORDER BY created_at"
        ).fetchall()


def start_run_and_wait_until_running(folder: Path, file: Path) -> subprocess.Popen:
    assert run(["db", "init"], folder).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
    env["SPINE_TIER"] = "basic"
    process = subprocess.Popen(
        [spine_script(), "run", "otc.daily", "-p", f"file={file}"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not any(status == "running" for _, status, *_ in executions(folder)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.02)
    return process


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_run_failed_as_interrupted(tmp_path, big_file, sig):
    process = start_run_and_wait_until_running(tmp_path, big_file)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in stderr
    [(_, status, error, category)] = executions(tmp_path)
    assert (status, error, category) == ("failed", "interrupted", "CANCELLED")


def test_a_hard_killed_run_is_reported_and_ended_by_a_documented_command(tmp_path, big_file):
    process = start_run_and_wait_until_running(tmp_path, big_file)
    process.kill()
    process.wait(timeout=30)
    [(execution_id, status, *_)] = executions(tmp_path)
    assert status == "running"
    warned = run(["query", "metrics"], tmp_path)
    assert warned.stderr.splitlines()[0] == (
        f"warning: execution {execution_id} (otc.daily) is marked running but its process "
        f"(pid {process.pid}) is gone; end it with: spine status --end-stale"
    )
    status_output = run(["status"], tmp_path)
    assert status_output.returncode == 0, status_output.stderr
    assert f"stale: {execution_id}" in status_output.stdout
    assert f"process (pid {process.pid}) is gone" in status_output.stdout
    assert "spine status --end-stale" in status_output.stdout
    ended = run(["status", "--end-stale"], tmp_path)
    assert ended.returncode == 0, ended.stderr
    assert f"ended {execution_id}" in ended.stdout
    [(_, status, error, category)] = executions(tmp_path)
    assert status == "failed" and category == "INFRASTRUCTURE"
    assert error == f"interrupted: its spine process (pid {process.pid}) ended without finishing it"
    assert "stale" not in run(["status"], tmp_path).stdout


def test_concurrent_spine_runs_on_one_sqlite_file_equal_a_sequential_run(tmp_path):
    """8 files for the same dates, 4 `spine run` processes at a time: all complete, and the
    metrics equal those of the same runs one after another."""
    files = []
    for n in range(8):
        path = tmp_path / "data" / f"d{n}" / "trades.psv"
        path.parent.mkdir(parents=True)
        generate(path, rows=2_000, days=2, symbols=4, seed=n)
        files.append(path)
    sequential, concurrent = tmp_path / "sequential", tmp_path / "concurrent"
    for folder in (sequential, concurrent):
        folder.mkdir()
        assert run(["db", "init"], folder).returncode == 0
    for path in files:
        assert run(["run", "otc.daily", "-p", f"file={path}"], sequential).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_")}
    env["SPINE_TIER"] = "basic"
    for start in (0, 4):
        running = [
            subprocess.Popen(
                [spine_script(), "run", "otc.daily", "-p", f"file={path}"],
                cwd=concurrent,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in files[start : start + 4]
        ]
        for process in running:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr

    def metrics(folder):
        return json.loads(run(["query", "metrics", "--format", "json"], folder).stdout)

    assert metrics(concurrent) == metrics(sequential)
    assert sum(m["trade_count"] for m in metrics(concurrent)) == 8 * 2_000
