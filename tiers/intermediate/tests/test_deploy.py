"""The compose file and Dockerfile: parse, and every command is a real `spine` command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from spine_basic.cli import main

TIER_DIR = Path(__file__).resolve().parents[1]
REPO = TIER_DIR.parents[1]


def _find(relative: str) -> Path:
    path = REPO / relative
    if not path.exists():
        pytest.fail(f"{relative} not found at the repository root")
    return path


def _resolve(argv: list[str]) -> click.Command:
    """Walk the click tree as `spine` would (intermediate tier), failing on an unknown name."""
    ctx = click.Context(main)
    command: click.Command = main
    args = list(argv)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`spine {' '.join(argv)}`: no command {name!r}"
        command = sub
    # Options must parse too.
    command.make_context("spine", args, parent=ctx, resilient_parsing=False)
    return command


@pytest.fixture(autouse=True)
def _intermediate(monkeypatch):
    monkeypatch.setenv("SPINE_TIER", "intermediate")
    main._built_for = None


def test_compose_services_run_real_commands():
    compose = yaml.safe_load(_find("deploy/compose/intermediate.yml").read_text())
    services = compose["services"]
    assert {"postgres", "db-init", "api", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    commands = {name: svc["command"] for name, svc in services.items() if name != "postgres"}
    assert commands["db-init"][:2] == ["db", "init"]
    assert commands["api"][:2] == ["api", "start"] and "0.0.0.0" in commands["api"]
    assert commands["worker"][:2] == ["worker", "start"]
    for argv in commands.values():
        _resolve(argv)
    for name in ("api", "worker", "db-init"):
        env = services[name]["environment"]
        assert env["SPINE_DATABASE_URL"].startswith("postgresql://")
    assert "SPINE_API_TOKEN" in services["api"]["environment"]  # it binds 0.0.0.0 in its container
    for name in ("api", "worker"):
        folder = services[name]["environment"]["SPINE_DATA_DIRS"]
        assert any(v.endswith(f":{folder}") for v in services[name]["volumes"])


def test_dockerfile_installs_this_tier():
    text = _find("deploy/docker/Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    install = " ".join(line for line in text.splitlines() if "pip install" in line or "./" in line)
    for package in (
        "packages/spine-core",
        "packages/spine-otc",
        "tiers/basic",
        "tiers/intermediate",
    ):
        assert package in install, package
    assert 'ENTRYPOINT ["spine"]' in text
