"""Issue 8: the REST API against its own OpenAPI schema (schemathesis).

Every operation under ``/api/v1`` gets generated requests — valid and invalid — sent
in-process with a real API token; each response must not be a 5xx, must use a documented
status code and content type, and must match the documented body schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import ASGIClient

from bot.app import create_app
from tests.conftest import make_settings
from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk

CONFIG = {
    "generation": {"mode": "all", "max-examples": 25},
    "phases": {"stateful": {"enabled": False}},
}


def _openapi() -> dict[str, Any]:
    """The app's schema; building it needs no database and no model."""
    app = create_app(make_settings("sqlite://", Path("unused.joblib")))
    return app.openapi()


schema = schemathesis.openapi.from_dict(
    _openapi(), config=schemathesis.Config.from_dict(CONFIG)
).include(path_regex="^/api/v1/")


@pytest.fixture(params=["admin"])
def caller(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def session(app_desk: Desk, caller: str) -> ASGIClient:
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    return ASGIClient(app_desk.client.app)


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@schema.parametrize()
def test_api_conforms_to_its_schema(case, session: ASGIClient, app_desk: Desk, caller: str) -> None:
    case.call_and_validate(
        base_url="http://testserver",
        session=session,
        headers={"Authorization": f"Bearer {app_desk.tokens[caller]}"},
    )
