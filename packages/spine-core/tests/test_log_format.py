"""Log formats: the execution fields on every record, JSON or text, passwords masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from spine_core.errors import ConfigurationError
from spine_core.log_context import current_log_context, log_context, set_log_field
from spine_core.log_format import configure_handler, log_format


def _capture(fmt: str) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    out = io.StringIO()
    handler = configure_handler(logging.StreamHandler(out), fmt)
    logger = logging.getLogger(f"spine.test.format.{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    return logger, out, handler


def test_json_records_carry_the_fields_inside_and_outside_an_execution():
    logger, out, handler = _capture("json")
    try:
        logger.warning("before")
        with log_context(execution_id="e1", worker="w1"):
            set_log_field("step", "parse")
            set_log_field("attempt", 2)
            logger.warning("inside")
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    fields = [(r["execution_id"], r["step"], r["attempt"], r["worker"]) for r in lines]
    assert fields == [(None, None, None, None), ("e1", "parse", 2, "w1"), (None,) * 4]
    assert current_log_context() == dict.fromkeys(("execution_id", "step", "attempt", "worker"))


def test_text_lines_name_the_execution_only_when_there_is_one():
    logger, out, handler = _capture("text")
    try:
        logger.warning("plain")
        with log_context(execution_id="e1", step="s", attempt=1, worker="w"):
            logger.warning("with %s", "postgresql://u:hunter2@127.0.0.1/db")
    finally:
        logger.removeHandler(handler)
    plain, inside = out.getvalue().splitlines()
    assert plain.endswith("plain")
    assert inside.endswith(
        "with postgresql://u:***@127.0.0.1/db [execution_id=e1 step=s attempt=1 worker=w]"
    )


def test_unknown_formats_and_fields_are_refused():
    assert log_format({}) == "text" and log_format({"log_format": "JSON"}) == "json"
    with pytest.raises(ConfigurationError, match="text or json"):
        log_format({"log_format": "xml"})
    with pytest.raises(ValueError, match="unknown log context fields"), log_context(user="x"):
        pass
