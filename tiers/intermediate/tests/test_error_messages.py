"""What a user reads when a run fails for a reason outside its own code."""

from __future__ import annotations

import signal
import subprocess

import pytest

from spine_core import ExecutionStatus
from spine_core.tier import Settings
from spine_core.workflow import Step, Workflow
from spine_intermediate.runtime import build_runtime
from spine_intermediate.testing import spine_cmd, spine_env
from spine_intermediate.tier import TIER

pytestmark = pytest.mark.postgres

TEST_PIPELINES = "spine_intermediate.testing:register_test_pipelines"


def test_a_database_error_in_a_step_shows_its_type_not_its_text(pg_url, caplog):
    rt = build_runtime(TIER, Settings(pg_url, {"workers": "1"}))
    db = rt.extras["database"]

    def insert_twice(ctx):
        db.call(
            db.pool.execute(
                "CREATE TABLE dup_keys (k int PRIMARY KEY);"
                "INSERT INTO dup_keys VALUES (42); INSERT INTO dup_keys VALUES (42)"
            )
        )

    rt.registry.add(Workflow("test.dup", (Step.lambda_("insert", insert_twice),)))
    try:
        rt.backend.start()
        done = rt.dispatcher.wait(rt.dispatcher.submit("test.dup").id, timeout=20)
    finally:
        rt.close()
    assert done.status is ExecutionStatus.FAILED
    assert done.error_category == "INFRASTRUCTURE"
    assert done.error == (
        "step 'insert' failed: database error (UniqueViolationError); "
        "see the worker log, or run again with --debug"
    )
    assert "dup_keys_pkey" in caplog.text  # the worker log has the driver's text


def test_a_workflow_the_worker_lacks_fails_as_validation_naming_how_to_register_it(pg_url):
    submitter = build_runtime(TIER, Settings(pg_url, {"pipeline_modules": TEST_PIPELINES}))
    try:
        queued = submitter.dispatcher.submit("test.noop")
        worker = subprocess.Popen(
            spine_cmd("worker", "start", "--concurrency", "1", "--grace", "0.5"),
            env=spine_env(pg_url, SPINE_PIPELINE_MODULES=""),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            done = submitter.dispatcher.wait(queued.id, timeout=20)
        finally:
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=20)
    finally:
        submitter.close()
    assert done.status is ExecutionStatus.FAILED, out
    assert done.error_category == "VALIDATION"
    assert done.error == (
        "this worker has no pipeline or workflow 'test.noop'; register it in the worker's "
        "process too (a `spine.pipelines` entry point of an installed package, or "
        "SPINE_PIPELINE_MODULES=module:function), then submit it again"
    )
    assert "test.noop" in out and "Traceback" not in out
