"""Structured logs of a real run: every record names execution, step, attempt and worker, and no
URL password reaches a log line."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from spine_core.log_format import configure_handler, mask_secrets
from spine_intermediate.testing import spine_cmd, spine_env

PASSWORD = "s3cret-pw"
PIPELINES = "spine_advanced.testing:register_test_pipelines"


def _spine(url, *args, **env_extra):
    env = spine_env(url, SPINE_TIER="advanced", SPINE_PIPELINE_MODULES=PIPELINES, **env_extra)
    return subprocess.run(
        spine_cmd(*args), env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["option", "env"])
def test_a_run_logs_json_lines_with_its_execution_fields(advanced_pg_url, tmp_path, how):
    url = advanced_pg_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    args = ["--debug", "run", "test.flagged", "-p", f"flag={tmp_path / 'flag'}", "--json"]
    if how == "option":
        result = _spine(url, "--log-format", "json", *args)
    else:
        result = _spine(url, *args, SPINE_LOG_FORMAT="json")
    execution_id = json.loads(result.stdout)["id"]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records, result.stderr
    for record in records:
        assert {"execution_id", "step", "attempt", "worker", "message", "level"} <= set(record)
    looked = [r for r in records if r["message"].startswith("looking for")]
    assert [(r["execution_id"], r["step"], r["attempt"]) for r in looked] == [
        (execution_id, "check", 1),
        (execution_id, "check", 2),
    ]
    assert all(r["worker"] for r in looked)
    assert PASSWORD not in result.stderr and PASSWORD not in result.stdout


def test_the_handler_masks_url_passwords_in_messages_and_tracebacks(capsys):
    logger = logging.getLogger("spine.test.masking")
    handler = configure_handler(logging.StreamHandler(), "json")
    logger.addHandler(handler)
    try:
        logger.warning("broker %s", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
        try:
            raise ConnectionError(f"amqp://guest:{PASSWORD}@127.0.0.1:5672// refused")
        except ConnectionError:
            logger.exception("lost postgresql://u:%s@127.0.0.1/db", PASSWORD)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert PASSWORD not in err
    assert "redis://:***@127.0.0.1:6379/0" in err and "amqp://guest:***@127.0.0.1" in err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("http://127.0.0.1:8000/path@x", "http://127.0.0.1:8000/path@x"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_mask_secrets(text, masked):
    assert mask_secrets(text) == masked


@pytest.mark.postgres
def test_error_lines_and_api_errors_mask_url_passwords(advanced_pg_url):
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from spine_advanced.tier import TIER
    from spine_basic.cli import main
    from spine_core.tier import Settings
    from spine_intermediate.api import create_app

    secret_name = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    result = CliRunner().invoke(
        main, ["--tier", "advanced", "--db", advanced_pg_url, "run", secret_name, "--no-wait"]
    )
    assert result.exit_code == 1 and "unknown pipeline" in result.output
    assert PASSWORD not in result.output and "redis://:***@127.0.0.1:6379/0" in result.output
    runtime = TIER.open_runtime(Settings(advanced_pg_url, {}))
    try:
        app = create_app(
            runtime=runtime, settings=Settings(advanced_pg_url, {"api_worker": "none"})
        )
        with TestClient(app) as client:
            answer = client.post("/executions", json={"pipeline": secret_name})
        assert answer.status_code == 400 and PASSWORD not in answer.text
        assert "redis://:***@" in answer.json()["error"]["message"]
    finally:
        runtime.close()
