"""`SPINE_API_TOKEN`: when set, write endpoints need it as a bearer token.

Reads stay open unless `SPINE_API_TOKEN_READS=true`. Without a token the API must not be
reachable from other machines, so `spine api start` refuses to bind anything but 127.0.0.1
(see `check_bind`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from fastapi import Request

from spine_core.errors import ConfigurationError, SpineError

TOKEN_OPTION = "api_token"
READS_OPTION = "api_token_reads"
LOOPBACK = "127.0.0.1"


class Unauthorized(SpineError):
    """A write request without the configured bearer token (answered with 401)."""


def api_token(options: Mapping[str, str]) -> str | None:
    """The configured token, or None when writes are open (loopback only)."""
    token = (options.get(TOKEN_OPTION) or "").strip()
    return token or None


def guards_reads(options: Mapping[str, str]) -> bool:
    """`SPINE_API_TOKEN_READS=true`: the read endpoints need the token too (health stays open)."""
    raw = (options.get(READS_OPTION) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw not in ("1", "true", "yes"):
        raise ConfigurationError(f"SPINE_{READS_OPTION.upper()} must be true or false, got {raw!r}")
    if api_token(options) is None:
        raise ConfigurationError(
            f"SPINE_{READS_OPTION.upper()} needs SPINE_{TOKEN_OPTION.upper()} to be set"
        )
    return True


def check_bind(host: str, options: Mapping[str, str]) -> None:
    """Refuse to serve beyond 127.0.0.1 when no token protects the write endpoints."""
    if host != LOOPBACK and api_token(options) is None:
        raise ConfigurationError(
            f"refusing to bind {host} without SPINE_{TOKEN_OPTION.upper()}: anyone who can "
            f"reach it could submit work; set a token, or bind {LOOPBACK}"
        )


def require_token(token: str | None) -> Callable[[Request], None]:
    """A dependency that checks `Authorization: Bearer <token>` when a token is configured."""

    def check(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthorized(
                f"this endpoint needs the API token: send 'Authorization: Bearer <token>' "
                f"(the server's SPINE_{TOKEN_OPTION.upper()})"
            )

    return check
