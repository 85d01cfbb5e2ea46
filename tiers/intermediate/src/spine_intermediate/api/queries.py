"""Query parameter types that refuse what lax parsing would misread, and unknown parameters.

Pydantic reads `date=0` or `created_since=0.5` as Unix timestamps and lets integers and NUL
bytes through that PostgreSQL then rejects with a 500; here they are 422s naming the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

MAX_OFFSET = 2**63 - 1
"""PostgreSQL's bigint: the largest OFFSET it takes."""
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TEXT = r"^[^\x00-\x1f\x7f]*$"
"""Printable text: no NUL (PostgreSQL refuses it in text) and no other control characters."""


def _iso(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 date (YYYY-MM-DD) or date-time, not a number")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Text = Annotated[str, Query(max_length=200, pattern=_TEXT)]
ExecutionId = Annotated[str, Path(max_length=200, pattern=_TEXT)]


def no_unknown_query_params(request: Request) -> None:
    """Refuse query parameters the route does not declare, instead of silently ignoring them."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "unknown query parameter; this endpoint takes: "
                    + (", ".join(sorted(known)) or "none"),
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
