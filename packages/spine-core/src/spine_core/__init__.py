"""Market Spine's engine: the concepts every tier shares and the interfaces they implement."""

from importlib.metadata import version as _distribution_version

from spine_core.backend import Backend, BackendHealth, InlineBackend
from spine_core.capabilities import Capability, capabilities_up_to
from spine_core.context import WorkflowContext
from spine_core.dispatcher import Dispatcher
from spine_core.engine import StepRun, WorkflowEngine, WorkflowRunResult
from spine_core.errors import (
    ConfigurationError,
    ErrorCategory,
    ExecutionNotFound,
    IllegalTransition,
    InvalidParams,
    MissingCapability,
    SpineError,
    UnknownPipeline,
    WorkflowDefinitionError,
)
from spine_core.events import EventType, ExecutionEvent
from spine_core.execution import Execution, ExecutionFilter, Lane, NewExecution, TriggerSource
from spine_core.groups import GroupStep, PipelineGroup
from spine_core.history import HistoryObserver
from spine_core.ports import LedgerStore, RunHistoryStore, StepRunRecord
from spine_core.quality import Gate, GateResult, QualityMetrics, Severity, param
from spine_core.registry import PipelineContext, PipelineDef, Registry, pipeline
from spine_core.resources import Resources
from spine_core.results import StepResult, StepStatus
from spine_core.runner import ExecutionRunner
from spine_core.status import ExecutionStatus, check_transition
from spine_core.tier import Runtime, Settings, Tier, active_tier, installed_tiers
from spine_core.workflow import Step, StepKind, Workflow

__version__ = _distribution_version("spine-core")

__all__ = [
    "Backend",
    "BackendHealth",
    "Capability",
    "ConfigurationError",
    "Dispatcher",
    "ErrorCategory",
    "EventType",
    "Execution",
    "ExecutionEvent",
    "ExecutionFilter",
    "ExecutionNotFound",
    "ExecutionRunner",
    "ExecutionStatus",
    "Gate",
    "GateResult",
    "GroupStep",
    "HistoryObserver",
    "IllegalTransition",
    "InlineBackend",
    "InvalidParams",
    "Lane",
    "LedgerStore",
    "MissingCapability",
    "NewExecution",
    "PipelineContext",
    "PipelineDef",
    "PipelineGroup",
    "QualityMetrics",
    "Registry",
    "Resources",
    "RunHistoryStore",
    "Runtime",
    "Settings",
    "Severity",
    "SpineError",
    "Step",
    "StepKind",
    "StepResult",
    "StepRun",
    "StepRunRecord",
    "StepStatus",
    "Tier",
    "TriggerSource",
    "UnknownPipeline",
    "Workflow",
    "WorkflowContext",
    "WorkflowDefinitionError",
    "WorkflowEngine",
    "WorkflowRunResult",
    "active_tier",
    "capabilities_up_to",
    "check_transition",
    "installed_tiers",
    "param",
    "pipeline",
]
