"""Services a tier hands to pipelines (domain stores, settings), looked up by interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from spine_core.errors import ConfigurationError

T = TypeVar("T")


class Resources:
    """A read-only map from an interface type to the tier's implementation of it.

    Pipelines ask for the interface (`ctx.resource(OtcStore)`), never for a concrete store, so
    the same pipeline runs on SQLite and PostgreSQL.
    """

    def __init__(self, provided: Mapping[type, Any] | None = None) -> None:
        self._provided = dict(provided or {})

    def get(self, kind: type[T]) -> T:
        """The implementation of `kind`; a clear error if this tier provides none."""
        try:
            return self._provided[kind]
        except KeyError:
            raise ConfigurationError(
                f"this tier provides no {kind.__name__}; install a tier that does"
            ) from None

    def __contains__(self, kind: type) -> bool:
        return kind in self._provided

    def with_(self, kind: type, value: Any) -> Resources:
        """A copy that also provides `kind`."""
        return Resources({**self._provided, kind: value})
