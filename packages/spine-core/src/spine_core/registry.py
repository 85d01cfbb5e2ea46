"""Named pipelines and workflows, registered by decorator or by entry point."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from spine_core.durable.children import resolve_child
from spine_core.errors import (
    ConfigurationError,
    InvalidParams,
    UnknownPipeline,
    UnknownWorkflowVersion,
    WorkflowDefinitionError,
)
from spine_core.quality import Gate, GateResult, QualityMetrics
from spine_core.resources import Resources, T
from spine_core.results import StepResult
from spine_core.retry import RetryPolicy
from spine_core.workflow import Step, Workflow

if TYPE_CHECKING:
    from spine_core.groups import PipelineGroup

PIPELINES_ENTRY_POINT_GROUP = "spine.pipelines"
log = logging.getLogger(__name__)


class NoParams(BaseModel):
    """Params model for pipelines that take none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline function receives besides its params."""

    execution_id: str
    pipeline: str
    resources: Resources = field(default_factory=Resources)
    gates: tuple[Gate, ...] = ()
    run_params: Mapping[str, Any] = field(default_factory=dict)
    logger: logging.Logger = log

    def resource(self, kind: type[T]) -> T:
        """The tier's implementation of interface `kind`."""
        return self.resources.get(kind)

    def evaluate_gates(self, quality: QualityMetrics) -> list[GateResult]:
        """Evaluate the step's gates now, so a pipeline can roll back before it commits."""
        return [gate.evaluate(quality, self.run_params) for gate in self.gates]


PipelineFn = Callable[[Any, PipelineContext], StepResult]


@dataclass(frozen=True)
class PipelineDef:
    """A registered pipeline: a function of (validated params, context) -> StepResult."""

    name: str
    fn: PipelineFn
    params_model: type[BaseModel] = NoParams
    description: str = ""
    retry: RetryPolicy | None = None
    """Applies to every run of this pipeline whose step names no policy of its own."""

    def validate(self, params: Mapping[str, Any] | None, *, strict: bool = True) -> BaseModel:
        """Typed params; `strict` also rejects names the pipeline does not know."""
        data = dict(params or {})
        if strict:
            unknown = sorted(set(data) - set(self.params_model.model_fields))
            if unknown:
                raise InvalidParams(
                    self.name, [{"field": name, "message": "unknown parameter"} for name in unknown]
                )
        else:
            data = {k: v for k, v in data.items() if k in self.params_model.model_fields}
        try:
            return self.params_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidParams(self.name, _field_errors(exc)) from None


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(params)", "message": err["msg"]}
        for err in exc.errors()
    ]


def pipeline(
    name: str,
    *,
    params: type[BaseModel] = NoParams,
    description: str = "",
    retry: RetryPolicy | None = None,
) -> Callable[[PipelineFn], PipelineDef]:
    """Turn a function into a `PipelineDef`; add it to a `Registry` to make it runnable."""

    def wrap(fn: PipelineFn) -> PipelineDef:
        return PipelineDef(name, fn, params, description or (fn.__doc__ or "").strip(), retry)

    return wrap


class Registry:
    """Everything runnable by name. Entry points (`spine.pipelines`) load on first use."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._pipelines: dict[str, PipelineDef] = {}
        self._workflows: dict[str, dict[int, Workflow]] = {}
        """Every registered version of each workflow, by name then version."""
        self._pending_entry_points = load_entry_points
        self._load_lock = threading.RLock()
        self._loading = False

    def add(self, *items: PipelineDef | Workflow | PipelineGroup) -> None:
        """Register pipelines, workflows or pipeline groups.

        A pipeline name is taken once; a workflow name once per version, so executions pinned
        to an older version keep running it after a newer one is registered.
        """
        from spine_core.groups import PipelineGroup

        for item in items:
            if isinstance(item, PipelineGroup):
                item = item.to_workflow()
            versions = self._workflows.get(item.name, {})
            taken = item.name in self._pipelines or (
                isinstance(item, PipelineDef) and bool(versions)
            )
            if taken or (isinstance(item, Workflow) and item.version in versions):
                label = f" version {item.version}" if isinstance(item, Workflow) else ""
                raise WorkflowDefinitionError(f"{item.name!r}{label} is already registered")
            if isinstance(item, PipelineDef):
                self._pipelines[item.name] = item
            else:
                self._workflows.setdefault(item.name, {})[item.version] = item

    def pipeline(
        self,
        name: str,
        *,
        params: type[BaseModel] = NoParams,
        description: str = "",
        retry: RetryPolicy | None = None,
    ) -> Callable[[PipelineFn], PipelineDef]:
        """Decorator: define a pipeline and register it here in one go."""

        def wrap(fn: PipelineFn) -> PipelineDef:
            defn = pipeline(name, params=params, description=description, retry=retry)(fn)
            self.add(defn)
            return defn

        return wrap

    def _load(self) -> None:
        if not self._pending_entry_points:
            return
        # One loader at a time: map steps look names up from several threads at once, and a
        # second thread must not see a half-loaded registry.
        with self._load_lock:
            if not self._pending_entry_points or self._loading:
                return  # done meanwhile, or a register function looking names up
            self._loading = True
            try:
                for ep in entry_points(group=PIPELINES_ENTRY_POINT_GROUP):
                    register: Callable[[Registry], None] = ep.load()
                    register(self)
            finally:
                self._loading = False
                self._pending_entry_points = False

    def pipelines(self) -> dict[str, PipelineDef]:
        """Registered pipelines by name."""
        self._load()
        return dict(self._pipelines)

    def workflows(self) -> dict[str, Workflow]:
        """Registered workflows by name, each at its latest version."""
        self._load()
        return {name: versions[max(versions)] for name, versions in self._workflows.items()}

    def versions(self, name: str) -> list[int]:
        """The registered versions of a workflow, oldest first."""
        self._load()
        return sorted(self._workflows.get(name, {}))

    def names(self) -> list[str]:
        """Every runnable name, sorted."""
        self._load()
        return sorted({*self._pipelines, *self._workflows})

    def get_pipeline(self, name: str) -> PipelineDef:
        """The pipeline called `name`."""
        self._load()
        if name not in self._pipelines:
            raise UnknownPipeline(name, list(self._pipelines))
        return self._pipelines[name]

    def get_workflow(self, name: str, version: int | None = None) -> Workflow:
        """The workflow called `name`: at `version`, or the latest one."""
        self._load()
        if name not in self._workflows:
            raise UnknownPipeline(name, list(self._workflows))
        versions = self._workflows[name]
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise UnknownWorkflowVersion(name, version, list(versions))
        return versions[version]

    def resolve(self, name: str, version: int | None = None) -> Workflow:
        """What runs for `name`: the workflow itself, or a pipeline as a one-step workflow.

        One engine runs both, so a pipeline run gets the same gates, timing and history. A
        `version` pins a workflow (a pipeline has only its one); a map's or sub-workflow's
        child name (see `spine_core.durable.children`) resolves to the step it runs.
        """
        self._load()
        if name in self._workflows:
            return self.get_workflow(name, version)
        if name in self._pipelines:
            return Workflow(name, (Step.pipeline(name, name, retry=self._pipelines[name].retry),))
        child = resolve_child(self, name)
        if child is not None:
            return child
        raise UnknownPipeline(name, self.names())

    def validate_params(self, name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Params as they will be stored and run; raises `InvalidParams` naming each bad field."""
        self._load()
        if name in self._pipelines:
            return self._pipelines[name].validate(params).model_dump(mode="json")
        workflow = self.resolve(name)
        if workflow.params_model is not None:
            try:
                model = workflow.params_model.model_validate(dict(params or {}))
            except ValidationError as exc:
                raise InvalidParams(name, _field_errors(exc)) from None
            return model.model_dump(mode="json")
        return dict(params or {})

    def check_references(self, workflows: Iterable[Workflow] | None = None) -> None:
        """Fail if a workflow names a pipeline that is not registered."""
        for workflow in workflows if workflows is not None else self.workflows().values():
            for name in workflow.pipelines():
                self.get_pipeline(name)


def load_pipeline_modules(registry: Registry, spec: str) -> None:
    """`SPINE_PIPELINE_MODULES=pkg.mod:register,other:fn`: call each with the registry.

    For pipelines that are not (yet) packaged with a `spine.pipelines` entry point, e.g. in
    tests or a deployment's own module; every process (API, workers) must be given the same.
    """
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module_name, _, attr = item.partition(":")
        try:
            module = importlib.import_module(module_name)
            register = getattr(module, attr or "register")
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"SPINE_PIPELINE_MODULES: cannot load {item!r}: {exc}"
            ) from None
        register(registry)
