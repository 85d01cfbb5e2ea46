from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner

from spine_advanced.runtime import build_runtime
from spine_advanced.tier import TIER
from spine_basic.cli import main
from spine_core import ExecutionStatus
from spine_core.errors import ConcurrencyConflict
from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_intermediate.testing import ServerThread

pytestmark = pytest.mark.postgres

PIPELINES = "spine_intermediate.testing:register_test_pipelines"


@pytest.fixture
def runtime(advanced_pg_url):
    rt = build_runtime(TIER, Settings(advanced_pg_url, {"pipeline_modules": PIPELINES}))
    yield rt
    rt.close()


@pytest.fixture
def api(runtime, advanced_pg_url):
    app = create_app(runtime=runtime, settings=Settings(advanced_pg_url, {"api_worker": "none"}))
    with ServerThread(app) as server:
        yield server.url


def post(url, **body):
    with httpx.Client(base_url=url, timeout=30) as http:
        return http.post("/executions", json={"pipeline": "test.noop", **body})


def test_100_concurrent_submissions_with_one_key_give_exactly_one_202(api, runtime):
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: post(api, logical_key="daily-2026-12-01"), range(100)))
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 1, [a.status_code for a in answers]
    holder = accepted[0].json()["id"]
    refused = [a for a in answers if a.status_code != 202]
    assert {a.status_code for a in refused} == {409}
    for answer in refused:
        error = answer.json()["error"]
        assert error["code"] == "logical_key_conflict"
        assert f"held by active execution {holder}" in error["message"]
    assert runtime.store.count_by_status() == {"queued": 1}


def test_the_key_is_released_when_its_execution_finishes(api, runtime):
    first = post(api, logical_key="k")
    assert first.status_code == 202
    assert post(api, logical_key="k").status_code == 409
    assert post(api, logical_key="other").status_code == 202
    runtime.backend.start()
    assert runtime.dispatcher.wait(first.json()["id"], timeout=20).status is (
        ExecutionStatus.COMPLETED
    )
    runtime.backend.stop(1)
    again = post(api, logical_key="k")
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]


def test_the_key_is_released_when_its_execution_fails(runtime):
    held = runtime.dispatcher.submit("test.noop", logical_key="k")
    with pytest.raises(ConcurrencyConflict, match=held.id):
        runtime.dispatcher.submit("test.noop", logical_key="k")
    runtime.store.transition(held.id, ExecutionStatus.RUNNING)
    runtime.store.transition(held.id, ExecutionStatus.FAILED, error="worker lost (reaper)")
    assert runtime.dispatcher.submit("test.noop", logical_key="k").id != held.id


@pytest.mark.parametrize("key", ["", "x" * 201])
def test_an_empty_or_overlong_key_is_422_and_writes_nothing(api, runtime, key):
    answer = post(api, logical_key=key)
    assert answer.status_code == 422, answer.text
    assert "logical_key" in answer.text
    assert runtime.store.count_by_status() == {}


def test_the_cli_names_the_active_execution_in_one_line(advanced_pg_url, runtime):
    held = runtime.dispatcher.submit("test.noop", logical_key="nightly")
    result = CliRunner().invoke(
        main,
        [
            "--tier",
            "advanced",
            "--db",
            advanced_pg_url,
            "run",
            "otc.daily",
            "--no-wait",
            "--logical-key",
            "nightly",
            "-p",
            "file=x",
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"error: logical_key 'nightly' is held by active execution {held.id}"]
