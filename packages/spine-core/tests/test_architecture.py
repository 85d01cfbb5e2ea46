"""The import-linter contract really guards spine_core: a copy that imports sqlite3 fails it.

The contract is read from the root pyproject.toml, so this test and CI cannot drift apart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import spine_core

ROOT_PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
CONTRACT_NAME_HINT = "spine_core imports no database driver"


def _lint_imports() -> str:
    found = shutil.which("lint-imports") or shutil.which(
        "lint-imports", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.skip("lint-imports is not installed (import-linter is in the workspace dev group)")
    return found


def _root_config() -> dict:
    if not ROOT_PYPROJECT.exists():
        pytest.skip(f"no workspace root pyproject.toml at {ROOT_PYPROJECT}")
    return tomllib.loads(ROOT_PYPROJECT.read_text())["tool"]["importlinter"]


def _core_contract(config: dict) -> dict:
    for contract in config["contracts"]:
        if contract.get("type") == "forbidden" and contract.get("source_modules") == ["spine_core"]:
            return contract
    raise AssertionError("root pyproject.toml has no forbidden contract for spine_core")


def _ini_list(values: list[str]) -> str:
    return "".join(f"\n    {v}" for v in values)


def _write_config(path: Path, config: dict, contract: dict) -> None:
    lines = [
        "[importlinter]",
        "root_packages =" + _ini_list(["spine_core"]),
        f"include_external_packages = {config.get('include_external_packages', False)}",
        "",
        "[importlinter:contract:spine-core-forbidden]",
        f"name = {contract['name']}",
        "type = forbidden",
        "source_modules =" + _ini_list(contract["source_modules"]),
        "forbidden_modules =" + _ini_list(contract["forbidden_modules"]),
    ]
    for key in ("ignore_imports", "allow_indirect_imports"):
        if key in contract:
            value = contract[key]
            lines.append(
                f"{key} =" + (_ini_list(value) if isinstance(value, list) else f" {value}")
            )
    path.write_text("\n".join(lines) + "\n")


def _run(tmp_path: Path, sneaky: str | None) -> tuple[subprocess.CompletedProcess, str]:
    lint = _lint_imports()
    config = _root_config()
    contract = _core_contract(config)
    copy = tmp_path / "src"
    shutil.copytree(
        Path(spine_core.__file__).parent,
        copy / "spine_core",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if sneaky is not None:
        (copy / "spine_core" / "_sneaky_storage.py").write_text(sneaky)
    cfg = tmp_path / "importlinter.ini"
    _write_config(cfg, config, contract)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    proc = subprocess.run(
        [lint, "--config", str(cfg), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, contract["name"]


def test_root_contract_forbids_database_drivers():
    config = _root_config()
    contract = _core_contract(config)
    assert CONTRACT_NAME_HINT in contract["name"]
    assert "sqlite3" in contract["forbidden_modules"]
    # sqlite3 is outside the root packages: import-linter only sees it with this flag.
    assert config.get("include_external_packages") is True


def test_a_core_module_importing_sqlite3_breaks_the_contract(tmp_path):
    proc, name = _run(tmp_path, "import sqlite3\n\nCONNECT = sqlite3.connect\n")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "broken" in output.lower(), output
    assert name in output, output
    assert "spine_core._sneaky_storage -> sqlite3" in output, output


def test_a_lazy_import_inside_a_function_is_caught_too(tmp_path):
    proc, name = _run(
        tmp_path, "def connect():\n    from sqlite3 import connect\n    return connect\n"
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert name in output and "sqlite3" in output, output


def test_the_unmodified_core_keeps_the_contract(tmp_path):
    proc, _ = _run(tmp_path, None)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "1 kept, 0 broken" in output, output
