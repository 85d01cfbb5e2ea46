"""The envelope every step returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from spine_core.errors import ErrorCategory
from spine_core.quality import GateResult, QualityMetrics


class StepStatus(StrEnum):
    """The outcome of one step."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """What a pipeline or lambda returns; build it with `ok`, `fail` or `skip`."""

    status: StepStatus
    output: Any = None
    error: str | None = None
    category: ErrorCategory | None = None
    quality: QualityMetrics | None = None
    gates: tuple[GateResult, ...] = field(default_factory=tuple)
    reason: str | None = None

    @classmethod
    def ok(cls, output: Any = None, *, quality: QualityMetrics | None = None) -> StepResult:
        """A success, with the value later steps read from the context."""
        return cls(StepStatus.OK, output=output, quality=quality)

    @classmethod
    def fail(
        cls,
        error: str,
        category: ErrorCategory = ErrorCategory.USER_CODE,
        *,
        quality: QualityMetrics | None = None,
        output: Any = None,
    ) -> StepResult:
        """A failure; `category` tells retries whether trying again can help."""
        return cls(
            StepStatus.FAILED, output=output, error=error, category=category, quality=quality
        )

    @classmethod
    def skip(cls, reason: str) -> StepResult:
        """Nothing to do, and that is fine."""
        return cls(StepStatus.SKIPPED, reason=reason)

    @property
    def succeeded(self) -> bool:
        """True unless the step failed."""
        return self.status is not StepStatus.FAILED

    def with_gates(self, gates: tuple[GateResult, ...]) -> StepResult:
        """The same result, carrying the gate outcomes the engine evaluated."""
        return replace(self, gates=gates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the output must already be JSON-ready)."""
        return {
            "status": self.status.value,
            "output": self.output,
            "error": self.error,
            "category": self.category.value if self.category else None,
            "quality": self.quality.to_dict() if self.quality else None,
            "gates": [g.to_dict() for g in self.gates],
            "reason": self.reason,
        }
