"""Rules pinned by explicit expectations, so a broken rule cannot change with its test."""

from __future__ import annotations

import pytest

from spine_core.errors import IllegalTransition
from spine_core.quality import Gate, QualityMetrics, Severity, param
from spine_core.status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    ExecutionStatus,
    check_transition,
    is_terminal,
)

S = ExecutionStatus

EXPECTED_EDGES = {
    ("pending", "queued"),
    ("pending", "running"),
    ("pending", "failed"),
    ("pending", "cancelled"),
    ("queued", "running"),
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelling"),
    ("running", "queued"),
    ("cancelling", "cancelled"),
    ("cancelling", "completed"),
    ("cancelling", "failed"),
    ("failed", "dead_lettered"),
    ("failed", "queued"),
}
"""Every allowed status change, written out (not derived from ALLOWED_TRANSITIONS)."""


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_check_transition_allows_exactly_the_expected_edges(current, target):
    if (current.value, target.value) in EXPECTED_EDGES:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current.value, target.value)


def test_the_table_is_the_expected_one():
    edges = {(a.value, b.value) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert edges == EXPECTED_EDGES


def test_terminal_statuses():
    assert {s.value for s in TERMINAL_STATUSES} == {
        "completed",
        "failed",
        "dead_lettered",
        "cancelled",
    }
    assert [s.value for s in S if is_terminal(s)] == [
        "completed",
        "failed",
        "dead_lettered",
        "cancelled",
    ]


def quality(valid: int, invalid: int, **custom: float) -> QualityMetrics:
    return QualityMetrics(
        record_count=valid + invalid, valid_count=valid, invalid_count=invalid, custom=custom
    )


def test_a_max_gate_passes_at_its_threshold_and_fails_just_above():
    gate = Gate.max("reject_rate", param("max_reject_rate", 0.01))
    assert gate.evaluate(quality(99, 1)).passed  # 1 reject in 100 under 1%
    assert not gate.evaluate(quality(98, 2)).passed
    assert gate.evaluate(quality(98, 2), {"max_reject_rate": 0.02}).passed


def test_a_min_gate_passes_at_its_threshold_and_fails_just_below():
    gate = Gate.min("record_count", 100)
    assert gate.evaluate(quality(100, 0)).passed
    assert not gate.evaluate(quality(99, 0)).passed


@pytest.mark.parametrize(
    ("op", "passes_at", "fails_at"),
    [(">=", 5, 4), ("<=", 5, 6), (">", 6, 5), ("<", 4, 5), ("==", 5, 6)],
)
def test_compare_gates_at_and_beside_their_threshold(op, passes_at, fails_at):
    gate = Gate.compare("n", op, 5)
    assert gate.evaluate(quality(1, 0, n=passes_at)).passed
    failed = gate.evaluate(quality(1, 0, n=fails_at))
    assert not failed.passed
    assert failed.message == f"gate 'n {op}' failed: observed n={fails_at:g}, required {op} 5"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Gate.min("n", 1, severity=Severity.WARN),
        lambda: Gate.max("n", 1, severity=Severity.WARN),
        lambda: Gate.compare("n", "==", 1, severity=Severity.WARN),
        lambda: Gate.check("n ok", lambda q: False, metric="n", severity=Severity.WARN),
    ],
)
def test_every_gate_constructor_keeps_its_severity(make):
    gate = make()  # built inside the test, so a mutated constructor is the one tested
    assert gate.severity is Severity.WARN
    assert gate.evaluate(quality(1, 0, n=5)).severity is Severity.WARN


def test_gates_default_to_error_severity():
    gates = [
        Gate.min("n", 1),
        Gate.max("n", 1),
        Gate.compare("n", "==", 1),
        Gate.check("n ok", lambda q: True),
    ]
    assert [g.severity for g in gates] == [Severity.ERROR] * 4
    assert [g.name for g in gates] == ["min n", "max n", "n ==", "n ok"]


def test_an_unknown_operator_names_the_known_ones():
    with pytest.raises(
        ValueError, match=r"^unknown gate operator '!='; use one of >=, <=, >, <, ==$"
    ):
        Gate.compare("n", "!=", 1)


def test_a_missing_metric_fails_the_gate_and_says_which():
    result = Gate.max("nope", 3).evaluate(quality(1, 0))
    assert result.to_dict() == {
        "gate": "max nope",
        "passed": False,
        "severity": "error",
        "observed": None,
        "threshold": 3.0,
        "message": "gate 'max nope' failed: no quality metric named 'nope'",
    }


def test_results_of_passing_and_failing_gates_explain_themselves():
    passed = Gate.min("n", 2).evaluate(quality(1, 0, n=2))
    assert passed.to_dict() == {
        "gate": "min n",
        "passed": True,
        "severity": "error",
        "observed": 2.0,
        "threshold": 2.0,
        "message": "gate 'min n' passed",
    }
    checked = Gate.check("n even", lambda q: q.value("n") % 2 == 0, metric="n")
    assert checked.evaluate(quality(1, 0, n=3)).message == "gate 'n even' failed (observed n=3)"
    assert checked.evaluate(quality(1, 0, n=3)).threshold is None
    blind = Gate.check("never", lambda q: False)
    result = blind.evaluate(quality(1, 0))
    assert (result.message, result.observed) == ("gate 'never' failed", None)


def test_quality_metrics_round_trip_and_name_every_metric():
    q = QualityMetrics(
        record_count=10,
        valid_count=7,
        invalid_count=3,
        custom={"hhi": 2.5},
        failure_reasons={"BAD_TIME": 3},
    )
    data = q.to_dict()
    assert data == {
        "record_count": 10,
        "valid_count": 7,
        "invalid_count": 3,
        "valid_rate": 0.7,
        "invalid_rate": 0.3,
        "custom": {"hhi": 2.5},
        "failure_reasons": {"BAD_TIME": 3},
    }
    back = QualityMetrics.from_dict(data)
    assert back == q
    assert type(back.record_count) is int and type(back.custom["hhi"]) is float
    assert QualityMetrics.from_dict({}) == QualityMetrics()
    assert QualityMetrics.from_dict({"custom": {"x": "1"}, "failure_reasons": {"R": "2"}}) == (
        QualityMetrics(custom={"x": 1.0}, failure_reasons={"R": 2})
    )
    named = {
        name: q.value(name)
        for name in (
            "record_count",
            "valid_count",
            "invalid_count",
            "valid_rate",
            "invalid_rate",
            "reject_rate",
            "hhi",
        )
    }
    assert named == {
        "record_count": 10.0,
        "valid_count": 7.0,
        "invalid_count": 3.0,
        "valid_rate": 0.7,
        "invalid_rate": 0.3,
        "reject_rate": 0.3,
        "hhi": 2.5,
    }
    assert (QualityMetrics().valid_rate, QualityMetrics().invalid_rate) == (1.0, 0.0)
    with pytest.raises(KeyError, match="no quality metric named 'x'"):
        q.value("x")


def test_a_param_threshold_without_a_default_needs_the_run_param():
    gate = Gate.max("reject_rate", param("max_reject_rate"))
    missing = gate.evaluate(quality(99, 1))
    assert not missing.passed and missing.threshold is None
    assert missing.message == (
        "gate 'max reject_rate' failed: run param 'max_reject_rate' is required"
    )
    assert gate.evaluate(quality(99, 1), {"max_reject_rate": 0.01}).passed
