"""What a user reads when a run fails for a reason outside its own code."""

from __future__ import annotations

import pytest

from spine_core import ExecutionStatus
from spine_core.tier import Settings
from spine_core.workflow import Step, Workflow
from spine_intermediate.runtime import build_runtime
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
    worker = build_runtime(TIER, Settings(pg_url, {"workers": "1"}))
    try:
        queued = submitter.dispatcher.submit("test.noop")
        worker.backend.start()
        done = worker.dispatcher.wait(queued.id, timeout=20)
    finally:
        worker.close()
        submitter.close()
    assert done.status is ExecutionStatus.FAILED
    assert done.error_category == "VALIDATION"
    assert "'test.noop'" in done.error
    assert "spine.pipelines" in done.error and "SPINE_PIPELINE_MODULES" in done.error
