"""The no-op pipeline the dispatch benchmarks run: every cost measured is the product's."""

from __future__ import annotations

from spine_core.registry import PipelineContext, pipeline
from spine_core.results import StepResult

NAME = "bench.noop"


@pipeline(NAME)
def noop(params: object, ctx: PipelineContext) -> StepResult:
    return StepResult.ok({})
