"""PipelineGroup (v1): pipelines with `depends_on`, compiled into a Workflow (v2).

There is one engine; a group is only a convenient way to write a linear workflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spine_core.errors import WorkflowDefinitionError
from spine_core.workflow import Step, Workflow


@dataclass(frozen=True)
class GroupStep:
    """One pipeline of a group and the steps it must run after."""

    name: str
    pipeline: str
    params: Mapping[str, Any] | None = None
    depends_on: Sequence[str] = ()


@dataclass(frozen=True)
class PipelineGroup:
    """A named set of pipeline steps run in dependency order."""

    name: str
    steps: Sequence[GroupStep]
    description: str = ""
    version: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)

    def execution_order(self) -> list[GroupStep]:
        """Steps sorted so that each runs after its dependencies; ties keep declared order."""
        by_name: dict[str, GroupStep] = {}
        for step in self.steps:
            if step.name in by_name:
                raise WorkflowDefinitionError(
                    f"group {self.name!r} has two steps named {step.name!r}"
                )
            by_name[step.name] = step
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in by_name:
                    raise WorkflowDefinitionError(
                        f"group {self.name!r}: step {step.name!r} depends on unknown step {dep!r}"
                    )
        ordered: list[GroupStep] = []
        done: set[str] = set()
        remaining = list(self.steps)
        while remaining:
            ready = [s for s in remaining if set(s.depends_on) <= done]
            if not ready:
                cycle = ", ".join(s.name for s in remaining)
                raise WorkflowDefinitionError(
                    f"group {self.name!r} has a dependency cycle among: {cycle}"
                )
            step = ready[0]
            ordered.append(step)
            done.add(step.name)
            remaining.remove(step)
        return ordered

    def to_workflow(self) -> Workflow:
        """The equivalent workflow: one pipeline step per group step, in dependency order."""
        steps = tuple(
            Step.pipeline(s.name, s.pipeline, dict(s.params) if s.params is not None else None)
            for s in self.execution_order()
        )
        return Workflow(
            self.name, steps, version=self.version, description=self.description, tags=self.tags
        )
