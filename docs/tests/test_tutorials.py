"""The tutorials, run as written.

Every `$ ` line of a ```console block (with `\\` continuation lines) is a command; the lines
after it are illustrative output. A tutorial's commands run in order as one bash script
(`set -euo pipefail`) in a directory holding a copy of `packages/` and `tiers/`, the way a
reader runs them in a clone. Tutorial 1 creates the virtual environment (pip from PyPI for the
dependencies); tutorial 2 reuses it, on a throwaway PostgreSQL database and free ports.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spine_basic.migrations import LATEST_VERSION
from spine_intermediate.testing import free_port, require_postgres, temporary_database
from spine_otc.metrics import METRIC_FIELDS

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial"
TUTORIAL_DB_URL = "postgresql://postgres@127.0.0.1:5432/spine"
TUTORIAL_API = "127.0.0.1:8000"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def console_commands(markdown: str) -> list[str]:
    """The `$ ` commands of every ```console block, in order."""
    commands: list[str] = []
    fence: str | None = None
    continuing = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = (stripped[3:].strip() or "text") if fence is None else None
            continuing = False
            continue
        if fence != "console":
            continue
        if continuing:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        else:
            continue
        continuing = line.endswith("\\")
    return commands


def script_of(commands: list[str]) -> str:
    """One bash script: each command echoed (`$ ...`) before it runs."""
    lines = ["set -euo pipefail"]
    for command in commands:
        lines.append(f"printf '%s\\n' {shlex.quote('$ ' + command)}")
        lines.append(command)
    return "\n".join(lines) + "\n"


@dataclass
class Ran:
    """A finished tutorial script."""

    returncode: int
    output: str

    def check(self) -> str:
        assert self.returncode == 0, f"exit code {self.returncode}; output:\n{self.output}"
        return self.output


def clean_env() -> dict[str, str]:
    """The caller's environment (pip settings included) minus what would leak the workspace."""
    here = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SPINE_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.setdefault("PIP_NO_INPUT", "1")
    return env


def run_script(script: str, cwd: Path, name: str, timeout: float = 900) -> Ran:
    """Run `script` with bash in its own process group; whatever it started dies with it."""
    (cwd / f"{name}.sh").write_text(script)
    log = cwd / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", f"{name}.sh"],
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            kill_group(proc)
    return Ran(returncode, log.read_text())


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the script's process group (background jobs included), SIGKILL what stays."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reap bash itself if it just died
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shaped like a clone: `packages/` and `tiers/` copied from this checkout."""
    root = tmp_path_factory.mktemp("tutorial")
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.pyc", ".venv", "*.db", "*.db-*", ".pytest_cache", ".ruff_cache",
        ".hypothesis", "build", "dist", "*.egg-info",
    )  # fmt: skip
    for folder in ("packages", "tiers"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    return root


@pytest.fixture(scope="module")
def basic_tutorial(workdir: Path) -> Ran:
    """Tutorial 1, run once: it creates the venv and the SQLite database tutorial 2 uses."""
    commands = console_commands((TUTORIAL / "01-basic.md").read_text())
    return run_script(script_of(commands), workdir, "01-basic")


def test_console_commands_are_extracted_in_order():
    text = "\n".join(
        [
            "```console",
            "$ echo one",
            "one",
            "$ echo two \\",
            "  three",
            "```",
            "```bash",
            "$ not this",
            "```",
            "$ nor this",
        ]
    )
    assert console_commands(text) == ["echo one", "echo two \\\n  three"]


VERSION = re.compile(r"\b\d+\.\d+\.\d+\b")


def shown_after(markdown: str, command: str) -> str:
    """The illustrative output a tutorial shows after `$ command`, up to the next command."""
    lines = markdown.split(f"\n$ {command}\n", 1)[1].splitlines()
    shown = []
    for line in lines:
        if line.startswith(("$ ", "```")):
            break
        shown.append(line)
    return "\n".join(shown)


def assert_versions_shown_as_run(markdown: str, out: str) -> None:
    """`spine --version` as the tutorial shows it: the same packages, versions not compared.

    The tutorial writes versions as X.Y.Z, so a release does not make it show stale ones.
    """
    shown = shown_after(markdown, "spine --version")
    assert shown and not VERSION.search(shown), shown
    assert shown in VERSION.sub("X.Y.Z", out)


def test_tutorials_show_no_version_numbers_of_the_packages():
    for path in TUTORIAL.glob("*.md"):
        stale = re.findall(
            r"(?:market-spine-[a-z]+|spine-core|spine-otc)[- ]\d+\.\d", path.read_text()
        )
        assert not stale, f"{path.name} shows versions that go stale: {stale}"


def test_basic_tutorial(basic_tutorial: Ran):
    out = basic_tutorial.check()
    assert_versions_shown_as_run((TUTORIAL / "01-basic.md").read_text(), out)
    assert "active tier: basic" in out
    assert f"schema version {LATEST_VERSION}" in out
    assert out.count("otc.daily: completed") >= 2
    header = [ln for ln in out.splitlines() if ln.startswith("trade_date")]
    assert header and header[0].split() == list(METRIC_FIELDS)
    assert '"trade_date": "2024-03-05"' in out  # the JSON query
    assert re.search(r"otc\.daily failed: .*reject", out)  # the failed gate, then the rerun
    assert "exit code 1" in out
    assert re.search(r"otc_trades\s+[\d,]+", out)  # spine status
    assert "otc.metrics.daily" in out  # spine list


@pytest.fixture(scope="module")
def postgres() -> None:
    """Skip (or, with SPINE_REQUIRE_SERVICES=1, fail) before any work if PostgreSQL is away."""
    require_postgres()


@pytest.fixture(scope="module")
def tutorial_database(postgres: None) -> Iterator[str]:
    """The PostgreSQL database tutorials 2 and 3 share, as a reader's `spine` database."""
    with temporary_database(migrated=False) as url:
        yield url


@pytest.fixture(scope="module")
def intermediate_tutorial(workdir: Path, basic_tutorial: Ran, tutorial_database: str) -> Ran:
    """Tutorial 2, run once: tutorial 3 starts from its database and virtual environment."""
    if basic_tutorial.returncode != 0:
        pytest.fail("tutorial 1 failed, and tutorial 2 starts from where it ends")
    text = (TUTORIAL / "02-intermediate.md").read_text()
    port = free_port()
    script = script_of(console_commands(text))
    for tutorial_value, ours in (
        (TUTORIAL_DB_URL, tutorial_database),
        (TUTORIAL_API, f"127.0.0.1:{port}"),
        ("--port 8000", f"--port {port}"),
    ):
        assert tutorial_value in script, f"the tutorial no longer uses {tutorial_value}"
        script = script.replace(tutorial_value, ours)
    assert "8000" not in script, "a port the test does not replace"
    return run_script(script, workdir, "02-intermediate")


def test_intermediate_tutorial(intermediate_tutorial: Ran):
    text = (TUTORIAL / "02-intermediate.md").read_text()
    ran = intermediate_tutorial
    out = ran.check()
    assert "active tier: intermediate" in out
    assert_versions_shown_as_run(text, out)
    imports = re.findall(r"^(\w+)\s+read\s+(\d+)\s+added\s+(\d+)$", out, re.M)
    tables = {table for table, _, _ in imports}
    assert {"executions", "otc_trades", "otc_metrics_daily"} <= tables
    first, second = imports[: len(tables)], imports[len(tables) :]
    assert all(added == read for _, read, added in first) and int(first[0][2]) > 0
    assert [int(added) for _, _, added in second] == [0] * len(tables)
    assert re.search(r"^202$", out, re.M)
    assert '"status": "completed"' in out
    assert '"items"' in out  # GET /otc/metrics/daily
    assert re.search(r"otc\.daily\s+1\s+completed", out)  # spine runs list
    header = [ln for ln in out.splitlines() if ln.startswith("trade_date")]
    assert len(header) >= 2  # spine query metrics, local and over --api


TUTORIAL_BROKER_URL = "redis://127.0.0.1:6379/0"
TEST_BROKER_URL = "redis://127.0.0.1:6379/10"
"""Tutorial 3's broker, and the Redis database its test uses instead (never the shared 0)."""


def test_advanced_tutorial(workdir: Path, intermediate_tutorial: Ran, tutorial_database: str):
    from spine_advanced.celery.testing import broker_unavailable_reason, require

    require(broker_unavailable_reason(TEST_BROKER_URL))
    if intermediate_tutorial.returncode != 0:
        pytest.fail("tutorial 2 failed, and tutorial 3 starts from where it ends")
    text = (TUTORIAL / "03-advanced.md").read_text()
    script = script_of(console_commands(text))
    for tutorial_value, ours in (
        (TUTORIAL_DB_URL, tutorial_database),
        (TUTORIAL_BROKER_URL, TEST_BROKER_URL),
    ):
        assert tutorial_value in script, f"the tutorial no longer uses {tutorial_value}"
        script = script.replace(tutorial_value, ours)
    out = run_script(script, workdir, "03-advanced", timeout=600).check()
    assert "active tier: advanced" in out
    assert_versions_shown_as_run(text, out)
    assert re.search(r"applied \d+", out)  # the advanced chain on top of the kept data
    assert re.search(r"otc\.daily\s+1\s+completed", out)  # tutorial 2's run is still there
    assert "otc.backfill: completed" in out
    assert re.search(r"otc\.daily failed: .*no such file: late\.psv", out) and "exit code 1" in out
    assert re.search(r"failed \(VALIDATION\), not retried\s+1\s+\S+\s+open", out)
    assert "retried as execution" in out
    assert re.search(r"^\s*\d+\s+cancelled\s", out, re.M)  # the cancelled run's last event
    assert re.search(r"^ok\s+broker", out, re.M)
