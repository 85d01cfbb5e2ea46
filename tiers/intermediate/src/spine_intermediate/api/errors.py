"""Error answers that tell a client what is wrong and where, and how to do it right."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope


def invalid_fields(errors: list[dict[str, Any]], body: bytes) -> list[dict[str, str]]:
    """One `{field, message}` per validation error; malformed JSON is located by line and column.

    FastAPI reports malformed JSON as field `<offset>` with "JSON decode error"; the offset
    means nothing to a person, the line and column of the body do.
    """
    fields = []
    for err in errors:
        loc = err.get("loc", ())
        if err.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
            fields.append({"field": "(body)", "message": _json_problem(err, body, loc[1])})
            continue
        fields.append(
            {
                "field": ".".join(str(p) for p in loc if p != "body") or "(body)",
                "message": str(err.get("msg", "invalid")),
            }
        )
    return fields


def _json_problem(err: dict[str, Any], body: bytes, offset: int) -> str:
    before = body[:offset].decode("utf-8", "replace")
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    reason = str((err.get("ctx") or {}).get("error") or "malformed")
    return f"invalid JSON at line {line}, column {column}: {reason}"


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
