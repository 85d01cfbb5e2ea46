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
    "gate",
    [
        Gate.min("n", 1, severity=Severity.WARN),
        Gate.max("n", 1, severity=Severity.WARN),
        Gate.compare("n", "==", 1, severity=Severity.WARN),
        Gate.check("n ok", lambda q: False, metric="n", severity=Severity.WARN),
    ],
)
def test_every_gate_constructor_keeps_its_severity(gate):
    assert gate.severity is Severity.WARN
    assert gate.evaluate(quality(1, 0, n=5)).severity is Severity.WARN


def test_a_param_threshold_without_a_default_needs_the_run_param():
    gate = Gate.max("reject_rate", param("max_reject_rate"))
    missing = gate.evaluate(quality(99, 1))
    assert not missing.passed
    assert missing.message == (
        "gate 'max reject_rate' failed: run param 'max_reject_rate' is required"
    )
    assert gate.evaluate(quality(99, 1), {"max_reject_rate": 0.01}).passed
