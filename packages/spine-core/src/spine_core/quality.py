"""Quality metrics and declarative gates evaluated on a step's result."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """A failing `error` gate fails the step; a failing `warn` gate is only recorded."""

    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class QualityMetrics:
    """Counts a step reports about the data it handled."""

    record_count: int = 0
    valid_count: int = 0
    invalid_count: int = 0
    custom: dict[str, float] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def valid_rate(self) -> float:
        """Share of records that passed; 1.0 for an empty input (nothing was wrong)."""
        return self.valid_count / self.record_count if self.record_count else 1.0

    @property
    def invalid_rate(self) -> float:
        """Share of records rejected; 0.0 for an empty input."""
        return self.invalid_count / self.record_count if self.record_count else 0.0

    def value(self, metric: str) -> float:
        """Look a metric up by the name a gate uses (`reject_rate` is `invalid_rate`)."""
        builtin = {
            "record_count": self.record_count,
            "valid_count": self.valid_count,
            "invalid_count": self.invalid_count,
            "valid_rate": self.valid_rate,
            "invalid_rate": self.invalid_rate,
            "reject_rate": self.invalid_rate,
        }
        if metric in builtin:
            return float(builtin[metric])
        if metric in self.custom:
            return float(self.custom[metric])
        raise KeyError(f"no quality metric named {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived rates included for readers."""
        return {
            "record_count": self.record_count,
            "valid_count": self.valid_count,
            "invalid_count": self.invalid_count,
            "valid_rate": self.valid_rate,
            "invalid_rate": self.invalid_rate,
            "custom": dict(self.custom),
            "failure_reasons": dict(self.failure_reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityMetrics:
        """Inverse of `to_dict` (derived rates are recomputed, not trusted)."""
        return cls(
            record_count=int(data.get("record_count", 0)),
            valid_count=int(data.get("valid_count", 0)),
            invalid_count=int(data.get("invalid_count", 0)),
            custom={k: float(v) for k, v in dict(data.get("custom", {})).items()},
            failure_reasons={k: int(v) for k, v in dict(data.get("failure_reasons", {})).items()},
        )


@dataclass(frozen=True)
class ParamRef:
    """A gate threshold taken from the run's params, so users can loosen it per run."""

    name: str
    default: float | None = None


def param(name: str, default: float | None = None) -> ParamRef:
    """Refer to run param `name` as a threshold, falling back to `default`.

    Without a default the run must give the param; a run that does not fails the gate.
    """
    return ParamRef(name, default)


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate, with what it saw, so a failure explains itself."""

    gate: str
    passed: bool
    severity: Severity
    observed: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "gate": self.gate,
            "passed": self.passed,
            "severity": self.severity.value,
            "observed": self.observed,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True)
class Gate:
    """A declarative check on a step's `QualityMetrics`.

    Either a comparison (`metric op threshold`) or a custom predicate over the metrics.
    """

    name: str
    metric: str | None = None
    op: str | None = None
    threshold: float | ParamRef | None = None
    predicate: Callable[[QualityMetrics], bool] | None = None
    severity: Severity = Severity.ERROR

    @classmethod
    def min(
        cls, metric: str, threshold: float | ParamRef, *, severity: Severity = Severity.ERROR
    ) -> Gate:
        """Pass when `metric >= threshold`."""
        return cls(f"min {metric}", metric, ">=", threshold, severity=severity)

    @classmethod
    def max(
        cls, metric: str, threshold: float | ParamRef, *, severity: Severity = Severity.ERROR
    ) -> Gate:
        """Pass when `metric <= threshold`."""
        return cls(f"max {metric}", metric, "<=", threshold, severity=severity)

    @classmethod
    def compare(
        cls,
        metric: str,
        op: str,
        threshold: float | ParamRef,
        *,
        severity: Severity = Severity.ERROR,
    ) -> Gate:
        """Pass when `metric op threshold`, op one of >=, <=, >, <, ==."""
        if op not in _OPS:
            raise ValueError(f"unknown gate operator {op!r}; use one of {', '.join(_OPS)}")
        return cls(f"{metric} {op}", metric, op, threshold, severity=severity)

    @classmethod
    def check(
        cls,
        name: str,
        predicate: Callable[[QualityMetrics], bool],
        *,
        severity: Severity = Severity.ERROR,
        metric: str | None = None,
    ) -> Gate:
        """Pass when `predicate(metrics)` is true; `metric` names the value to report."""
        return cls(name, metric=metric, predicate=predicate, severity=severity)

    def resolve_threshold(self, params: Mapping[str, Any]) -> float | None:
        """The threshold in force for a run with these params."""
        if isinstance(self.threshold, ParamRef):
            raw = params.get(self.threshold.name)
            if raw is None:
                raw = self.threshold.default
            if raw is None:
                raise KeyError(f"run param {self.threshold.name!r} is required")
            return float(raw)
        return None if self.threshold is None else float(self.threshold)

    def evaluate(
        self, metrics: QualityMetrics, params: Mapping[str, Any] | None = None
    ) -> GateResult:
        """Evaluate against `metrics`; a metric that is missing fails the gate."""
        params = params or {}
        threshold: float | None = None
        observed: float | None = None
        try:
            threshold = self.resolve_threshold(params)
            if self.metric is not None:
                observed = metrics.value(self.metric)
            if self.predicate is not None:
                passed = bool(self.predicate(metrics))
            else:
                assert self.op is not None and observed is not None and threshold is not None
                passed = _OPS[self.op](observed, threshold)
        except KeyError as exc:
            reason = exc.args[0] if exc.args else "missing metric"
            return GateResult(
                self.name,
                False,
                self.severity,
                None,
                threshold,
                f"gate {self.name!r} failed: {reason}",
            )
        if passed:
            message = f"gate {self.name!r} passed"
        elif self.predicate is not None:
            message = f"gate {self.name!r} failed" + (
                f" (observed {self.metric}={observed:g})" if observed is not None else ""
            )
        else:
            message = (
                f"gate {self.name!r} failed: observed {self.metric}={observed:g}, "
                f"required {self.op} {threshold:g}"
            )
        return GateResult(self.name, passed, self.severity, observed, threshold, message)


def failed_error_gates(results: list[GateResult]) -> list[GateResult]:
    """The results that must fail the step."""
    return [r for r in results if not r.passed and r.severity is Severity.ERROR]
