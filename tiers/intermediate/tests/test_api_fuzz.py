"""A bounded schemathesis run against the real app on real PostgreSQL: no request gets a 5xx.

The schema is read when the module is imported, before the database fixture exists, so the
requests go through `_Target`, which forwards them to the app the fixture opened.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from spine_core.tier import Settings
from spine_intermediate.api import create_app
from spine_otc import sample_path

pytestmark = pytest.mark.postgres


class _Target:
    """Forwards requests to `app`; answers lifespan itself (the fixture runs the real one once)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


TARGET = _Target()
schema = schemathesis.openapi.from_dict(
    create_app(Settings("postgresql://unused@127.0.0.1:1/none", {})).openapi()
)
schema.app = TARGET


@pytest.fixture(scope="module")
def live_app(module_pg_url, tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz-data")
    (data / "day.psv").write_bytes(sample_path().read_bytes())
    app = create_app(
        Settings(module_pg_url, {"api_worker": "embedded", "workers": "1", "data_dirs": str(data)})
    )
    with TestClient(app):  # runs the lifespan: the runtime stays open while we fuzz
        TARGET.app = app
        yield app
        TARGET.app = None


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, live_app):
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}: "
        f"{response.status_code} {response.text}"
    )
    assert "Traceback (most recent call last)" not in response.text
