"""Issue 13 item 7: the web chat limits messages per visitor and per client address.

A refused message gets a 429 with a friendly sentence and ``Retry-After``, and nothing is
stored for it (no contact, conversation or message).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from bot.app import create_app
from handoff.models import Contact, Conversation, Message
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi

API = "/chat/api/messages"


@pytest.fixture
def app(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> FastAPI:
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        webchat_max_per_visitor=3,
        webchat_max_per_address=5,
        webchat_rate_window_seconds=60,
    )
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _count(app: FastAPI, model: type) -> int:
    with Session(app.state.services.engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def _say(client: TestClient, text: str = "hello", **kw: Any) -> Any:
    return client.post(API, json={"client_id": uuid.uuid4().hex, "text": text}, **kw)


def test_a_visitor_sending_too_fast_gets_a_friendly_429(app: FastAPI, client: TestClient) -> None:
    assert [_say(client).status_code for _ in range(3)] == [200, 200, 200]
    stored = _count(app, Message)
    r = _say(client)
    assert r.status_code == 429
    assert "faster than we can read" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert _count(app, Message) == stored


def test_cookie_less_posts_are_limited_per_address(app: FastAPI, client: TestClient) -> None:
    statuses = []
    for _ in range(8):
        client.cookies.clear()  # a new visitor each time, from the same address
        statuses.append(_say(client).status_code)
    assert statuses == [200] * 5 + [429] * 3
    assert _count(app, Contact) == _count(app, Conversation) == 5


def test_the_widget_shows_the_429_message_and_waits_for_retry_after() -> None:
    script = (Path(__file__).parents[2] / "bot" / "web" / "static" / "chat.js").read_text()
    assert "response.status === 429" in script and "Retry-After" in script
