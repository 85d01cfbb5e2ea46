"""Installing a tier by name, as the READMEs and every "install it with" hint say.

The wheels are built once per session with the documented command; each tier is then installed
alone, by name, into its own fresh virtual environment, and its `spine --version` must list it
with the versions of this checkout (not some other package of that name from an index).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from spine_core.errors import BUILD_WHEELS_COMMAND, install_command

REPO = Path(__file__).resolve().parents[2]
PROJECTS = sorted(path.parent for path in REPO.glob("*/*/pyproject.toml"))
"""Every distribution of the workspace: packages/* and tiers/* that have a project file."""
TIERS = {
    tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]: project.name
    for project in PROJECTS
    if project.parent.name == "tiers"
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _uv() -> list[str]:
    found = os.environ.get("UV") or shutil.which("uv")
    if found:
        return [found]
    return [sys.executable, "-m", "uv"]


def _version(project: str) -> str:
    path = REPO / project / "pyproject.toml"
    return tomllib.loads(path.read_text())["project"]["version"]


@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """`dist/` of a clone, built by the documented command."""
    clone = tmp_path_factory.mktemp("clone")
    for part in ("packages", "tiers", "pyproject.toml", "uv.lock", "README.md"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, clone / part, ignore=shutil.ignore_patterns("tests", "*.db"))
        else:
            shutil.copy(source, clone / part)
    argv = shlex.split(BUILD_WHEELS_COMMAND)
    subprocess.run([*_uv(), *argv[1:]], cwd=clone, check=True, capture_output=True)
    return clone / "dist"


def test_the_build_command_makes_one_wheel_per_package(dist):
    names = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    expected = sorted(
        tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
        for project in PROJECTS
    )
    assert "market_spine_advanced" in expected
    assert names == expected


@pytest.mark.parametrize("distribution", sorted(TIERS))
def test_each_tier_installs_alone_by_name_from_the_wheels(dist, tmp_path, distribution):
    command = install_command(distribution)
    assert command.startswith(f"pip install --find-links dist {distribution} ")
    venv = tmp_path / "venv"
    subprocess.run([*_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            *_uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            "--find-links",
            str(dist),
            distribution,
        ],
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        [str(venv / "bin" / "spine"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    ).stdout
    tier = TIERS[distribution]
    assert f"{distribution} {_version(f'tiers/{tier}')}" in shown
    assert f"spine-core {_version('packages/spine-core')}" in shown
    assert f"spine-otc {_version('packages/spine-otc')}" in shown
    assert f"active tier: {tier} ({distribution})" in shown
    others = set(TIERS) - {distribution}
    if tier == "basic":
        assert not any(other in shown for other in others)
