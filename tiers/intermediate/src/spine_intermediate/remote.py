"""Client side of `--api URL`: a dispatcher and an OTC reader that talk to a remote API."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from spine_core.backend import BackendHealth
from spine_core.errors import (
    ConfigurationError,
    ExecutionNotFound,
    MissingCapability,
    SpineError,
)
from spine_core.execution import Execution, Lane, TriggerSource
from spine_core.resources import Resources
from spine_core.status import ExecutionStatus, is_terminal
from spine_core.tier import Runtime, Settings, Tier
from spine_otc.metrics import DailyMetrics
from spine_otc.store import OtcStore


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def execution_from_json(data: Mapping[str, Any]) -> Execution:
    """Core's `Execution` from the API's JSON (the shape of `Execution.to_dict`)."""
    return Execution(
        id=data["id"],
        name=data["name"],
        params=dict(data.get("params") or {}),
        status=ExecutionStatus(data["status"]),
        lane=Lane(data.get("lane", "normal")),
        trigger_source=TriggerSource(data.get("trigger_source", "api")),
        logical_key=data.get("logical_key"),
        parent_execution_id=data.get("parent_execution_id"),
        retry_count=int(data.get("retry_count", 0)),
        backend=data.get("backend", "local"),
        created_at=_dt(data["created_at"]),
        updated_at=_dt(data["updated_at"]),  # type: ignore[arg-type]
        started_at=_dt(data.get("started_at")),
        finished_at=_dt(data.get("finished_at")),
        error=data.get("error"),
        error_category=data.get("error_category"),
        result=data.get("result"),
        warnings=tuple(data.get("warnings") or ()),
    )


class ApiClient:
    """A thin JSON client; API errors become `SpineError`s carrying the server's message."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send; return the decoded JSON body or raise with the server's error message."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ConfigurationError(
                f"cannot reach the Market Spine API at {self.base_url}: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
                code, message = err.get("code", ""), err.get("message", response.text)
            except (ValueError, KeyError, TypeError):
                code, message = "", f"HTTP {response.status_code}"
            if code == "not_found" and "execution" in message:
                raise ExecutionNotFound(path.rsplit("/", 1)[-1])
            raise SpineError(f"{message} (HTTP {response.status_code})")
        return response.json()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


class RemoteDispatcher:
    """The parts of `Dispatcher` the CLI uses, over HTTP."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def submit(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        lane: Lane = Lane.NORMAL,
        trigger_source: TriggerSource = TriggerSource.API,
        logical_key: str | None = None,
        **_: Any,
    ) -> Execution:
        """POST /executions; a `file` param naming a local file is uploaded first."""
        body: dict[str, Any] = {
            "pipeline": name,
            "params": self._uploaded(dict(params or {})),
            "lane": lane.value,
        }
        if logical_key is not None:
            body["logical_key"] = logical_key
        return execution_from_json(self.client.request("POST", "/executions", json=body))

    def _uploaded(self, params: dict[str, Any]) -> dict[str, Any]:
        """The server cannot read this machine's files: send them, and pass the server's path.

        A `file` that does not exist here is passed unchanged, as a path on the server.
        """
        local = Path(str(params.get("file", "")))
        if "file" in params and local.is_file():
            with local.open("rb") as content:
                stored = self.client.request(
                    "POST", "/otc/files", params={"name": local.name}, content=content
                )
            params["file"] = stored["path"]
        return params

    def get(self, execution_id: str) -> Execution:
        """GET /executions/{id}."""
        return execution_from_json(self.client.request("GET", f"/executions/{execution_id}"))

    def wait(
        self, execution_id: str, *, timeout: float | None = None, poll: float = 0.2
    ) -> Execution:
        """Poll until terminal (or `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            execution = self.get(execution_id)
            if is_terminal(execution.status):
                return execution
            if deadline is not None and time.monotonic() >= deadline:
                return execution
            time.sleep(poll)


class ApiOtcReader:
    """`OtcStore.query_metrics` over `GET /otc/metrics/daily` (paging through the results)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def query_metrics(
        self,
        *,
        symbol: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DailyMetrics]:
        """Daily metrics ordered by date then symbol."""
        params: dict[str, Any] = {}
        if symbol:
            params["symbol"] = symbol
        if date_from:
            params["from"] = date_from.isoformat()
        if date_to:
            params["to"] = date_to.isoformat()
        rows: list[DailyMetrics] = []
        next_offset: int | None = offset
        while next_offset is not None and (limit is None or len(rows) < limit):
            page_size = 5000 if limit is None else min(5000, limit - len(rows))
            page = self.client.request(
                "GET",
                "/otc/metrics/daily",
                params={**params, "limit": page_size, "offset": next_offset},
            )
            rows += [DailyMetrics.from_row(item) for item in page["items"]]
            next_offset = page.get("next_offset")
        return rows

    def __getattr__(self, name: str) -> Any:
        raise MissingCapability(f"`{name}` over --api", "a local database (omit --api)", "remote")


class _NoBackend:
    name = "remote"

    def submit(self, execution_id: str) -> None:
        """The server runs the work."""

    def cancel(self, execution_id: str) -> None:
        """Not over this client."""

    def health(self) -> BackendHealth:
        """Unknown from here."""
        return BackendHealth(True, "remote")

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""


def remote_runtime(tier: Tier, base_url: str) -> Runtime:
    """A `Runtime` whose dispatcher and OTC reader call the API at `base_url`."""
    client = ApiClient(base_url, token=os.environ.get("SPINE_API_TOKEN"))
    reader = ApiOtcReader(client)
    return Runtime(
        tier=tier,
        settings=Settings(base_url),
        store=None,  # type: ignore[arg-type]
        backend=_NoBackend(),
        dispatcher=RemoteDispatcher(client),  # type: ignore[arg-type]
        registry=None,
        resources=Resources({OtcStore: reader}),  # type: ignore[arg-type]
        extras={"api_url": base_url, "otc_store": reader},
        on_close=[client.close],
    )
