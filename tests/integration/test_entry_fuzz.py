"""Issue 13: generated input on the web chat API and the console's forms — no 5xx, and a
refused request stores nothing (SQLite and PostgreSQL), like the REST API and the webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from bot.app import create_app
from handoff.models import Message
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import PLAIN_CHAT, VIP_CHAT, Console, seed

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
posts = st.fixed_dictionaries(
    {},
    optional={
        "client_id": st.text(max_size=70) | st.integers(),
        "text": st.text(max_size=60) | json_values,
        "callback_data": st.text(max_size=70) | json_values,
    },
)


@pytest.fixture
def console(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Console]:
    values = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        webchat_max_per_address=10_000,  # the limit is not what this test is about
    )
    with TestClient(create_app(values)) as client:
        c = Console(client, fake_bot_api, seed(client.app.state.services.engine))  # type: ignore[attr-defined]
        c.customer(VIP_CHAT, "/start vip-token-123")
        c.customer(PLAIN_CHAT, "/start plain-token-123")
        fake_bot_api.wait_for(lambda f: f.texts(VIP_CHAT) and f.texts(PLAIN_CHAT))
        yield c


def _messages(c: Console) -> int:
    with Session(c.engine) as s:
        return int(s.exec(select(func.count()).select_from(Message)).one())


@FUZZ
@given(body=posts | json_values)
def test_generated_web_chat_posts_never_fail_and_refusals_store_nothing(
    console: Console, body: Any
) -> None:
    console.client.cookies.clear()
    before = _messages(console)
    raw = json.dumps(body, allow_nan=True).encode()
    r = console.client.post(
        "/chat/api/messages", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert _messages(console) == before


@FUZZ
@given(text=st.text(max_size=40), reason=st.text(max_size=20))
def test_generated_console_form_text_never_fails_and_refusals_store_nothing(
    console: Console, text: str, reason: str
) -> None:
    if not hasattr(console, "handoff_id"):
        console.handoff_id = console.escalate(VIP_CHAT)  # type: ignore[attr-defined]
        console.login("agent")
    handoff = console.handoff_id  # type: ignore[attr-defined]
    before = _messages(console)
    r = console.act(handoff, "note", text=text)
    assert r.status_code in (303, 422), r.text
    if r.status_code == 422:
        assert _messages(console) == before
    r = console.act(handoff, "claim", version=reason)
    assert r.status_code in (303, 422), r.text
