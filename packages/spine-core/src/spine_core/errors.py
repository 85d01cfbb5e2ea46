"""Errors a user can act on, each with a message that says what to do next."""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    """Why a step or execution failed; decides whether a retry can help."""

    DATA_QUALITY = "DATA_QUALITY"
    VALIDATION = "VALIDATION"
    USER_CODE = "USER_CODE"
    INFRASTRUCTURE = "INFRASTRUCTURE"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


class SpineError(Exception):
    """Base of every error Market Spine raises on purpose."""


class IllegalTransition(SpineError):
    """A status change the execution state machine does not allow."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"illegal status transition {current} -> {target}")
        self.current = current
        self.target = target


class UnknownPipeline(SpineError):
    """Nothing is registered under the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = f"; known: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown pipeline or workflow {name!r}{hint}")
        self.name = name


class UnknownWorkflowVersion(UnknownPipeline):
    """An execution is pinned to a version of its workflow that is not registered here."""

    def __init__(self, name: str, version: int, known: list[int]) -> None:
        SpineError.__init__(
            self,
            f"workflow {name!r} version {version} is not registered (registered: "
            f"{', '.join(map(str, sorted(known))) or 'none'}); an execution that started on "
            f"version {version} never runs another version",
        )
        self.name = name
        self.version = version


class InvalidParams(SpineError):
    """Parameters failed validation; `errors` names each bad field."""

    def __init__(self, name: str, errors: list[dict[str, str]]) -> None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid params for {name}: {detail}")
        self.name = name
        self.errors = errors


BUILD_WHEELS_COMMAND = "uv build --all-packages --wheel --out-dir dist"
"""Builds every package's wheel into `dist/` of a clone; `install_command` installs from it."""


def install_command(distribution: str) -> str:
    """A command that installs `distribution` today: the packages are not on an index yet."""
    return (
        f"pip install --find-links dist {distribution} "
        f"(in a clone of Market Spine, after: {BUILD_WHEELS_COMMAND})"
    )


class MissingCapability(SpineError):
    """The installed tier cannot run a step kind or feature; names what to install."""

    def __init__(self, feature: str, distribution: str, active_tier: str) -> None:
        super().__init__(
            f"{feature} needs {distribution} (active tier: {active_tier}); "
            f"install it with: {install_command(distribution)}"
        )
        self.feature = feature
        self.distribution = distribution


class ExecutionNotFound(SpineError):
    """No execution has the given id."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"no execution with id {execution_id!r}")
        self.execution_id = execution_id


class ConcurrencyConflict(SpineError):
    """A logical_key is already held by an active execution; names that execution."""

    def __init__(self, logical_key: str, active_execution_id: str) -> None:
        super().__init__(
            f"logical_key {logical_key!r} is held by active execution {active_execution_id}"
        )
        self.logical_key = logical_key
        self.active_execution_id = active_execution_id


class WorkflowDefinitionError(SpineError):
    """A workflow or pipeline group is malformed (duplicate step, cycle, unknown dependency)."""


class ConfigurationError(SpineError):
    """Settings are missing or inconsistent (bad database URL, unknown tier)."""


StorageErrorTypes = tuple[type[BaseException], ...]
"""The exception types of a tier's database driver; the tier names them, core imports none."""


def storage_failure(exc: BaseException) -> str:
    """What a user sees for a driver error: its type only, since its text quotes rows and keys."""
    return f"database error ({type(exc).__name__}); see the worker log, or run again with --debug"


def unknown_here(exc: UnknownPipeline) -> str:
    """Why a worker cannot run an execution that the submitting process knew how to run."""
    if isinstance(exc, UnknownWorkflowVersion):
        return str(exc)
    return (
        f"this worker has no pipeline or workflow {exc.name!r}; register it in the worker's "
        "process too (a `spine.pipelines` entry point of an installed package, or "
        "SPINE_PIPELINE_MODULES=module:function), then submit it again"
    )
