"""The installed `spine` script, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

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
