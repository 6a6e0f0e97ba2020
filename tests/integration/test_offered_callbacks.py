"""Only offered callbacks count (issue 13, item 6): a rating, a "did this help?" vote or a
clarification choice is accepted only for a prompt we sent in that conversation, and only
once. The web chat is where anyone can post any ``callback_data``; Telegram redeliveries and
double taps go through the same check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from bot.app import create_app
from handoff import desk
from handoff.models import Feedback, Handoff, Message, User
from tests.conftest import make_settings
from tests.factories import tg_callback_update, tg_text_update
from tests.fakes.predictor import PASSWORD, FakePredictor
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.conftest import Service

API = "/chat/api/messages"


@pytest.fixture
def app(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> FastAPI:
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        webchat_secret="test-webchat-secret-0123456789",
    )
    return create_app(settings, predictor=FakePredictor())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, text: str, data: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": uuid.uuid4().hex, "text": text}
    if data is not None:
        body["callback_data"] = data
    response = client.post(API, json=body)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def count(app: FastAPI, model: type, *where: Any) -> int:
    with Session(app.state.services.engine) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(session.exec(stmt).one())


def bot_replies(app: FastAPI) -> int:
    return count(app, Message, Message.direction == "outbound")


def resolve_with_csat(app: FastAPI, client: TestClient) -> int:
    """A handoff for this visitor, resolved by an agent, who asks for a 1-5 CSAT."""
    assert post(client, "/human")["action"] == "escalated"
    with Session(app.state.services.engine, expire_on_commit=False) as session:
        agent = User(email=f"{uuid.uuid4().hex[:8]}@t.test", name="Alan Agent", role="agent")
        session.add(agent)
        session.flush()
        principal = desk.Principal.of(agent)
        handoff = session.exec(select(Handoff).order_by(col(Handoff.id).desc())).first()
        assert handoff is not None and handoff.id is not None
        desk.claim(session, principal, handoff.id)
        desk.resolve(session, principal, handoff.id, "answered")
        session.commit()
        return handoff.id


# -- never offered --------------------------------------------------------------------------


def test_a_rating_nobody_asked_for_is_stored_but_not_counted(
    app: FastAPI, client: TestClient
) -> None:
    assert post(client, "1", "csat:1")["action"] == "stored"
    assert count(app, Feedback) == 0
    assert bot_replies(app) == 0
    assert count(app, Message, Message.kind == "callback") == 1  # kept for agents


def test_a_rating_for_another_visitors_handoff_is_not_counted(
    app: FastAPI, client: TestClient
) -> None:
    handoff_id = resolve_with_csat(app, client)
    client.cookies.clear()  # another visitor
    assert post(client, "1", f"csat:1:{handoff_id}")["action"] == "stored"
    assert count(app, Feedback) == 0


def test_a_didnt_help_vote_on_an_answer_never_given_neither_counts_nor_escalates(
    app: FastAPI, client: TestClient
) -> None:
    assert post(client, "No", "helpful:no:password_reset")["action"] == "stored"
    assert count(app, Feedback) == 0
    assert count(app, Handoff) == 0


def test_a_vote_on_another_intent_than_the_answer_given_is_not_counted(
    app: FastAPI, client: TestClient
) -> None:
    post(client, PASSWORD)
    assert post(client, "Yes", "helpful:yes:invoice_request")["action"] == "stored"
    assert count(app, Feedback) == 0


# -- offered, once ----------------------------------------------------------------------------


def test_an_offered_rating_counts_once(app: FastAPI, client: TestClient) -> None:
    handoff_id = resolve_with_csat(app, client)
    assert post(client, "5", f"csat:5:{handoff_id}")["action"] == "answered"
    assert post(client, "5", f"csat:5:{handoff_id}")["action"] == "stored"
    assert post(client, "1", f"csat:1:{handoff_id}")["action"] == "stored"
    with Session(app.state.services.engine) as session:
        (rating,) = session.exec(select(Feedback)).all()
    assert (rating.kind, rating.score, rating.handoff_id) == ("csat", 5, handoff_id)


def test_an_offered_vote_counts_once(app: FastAPI, client: TestClient) -> None:
    post(client, PASSWORD)
    assert post(client, "Yes", "helpful:yes:password_reset")["action"] == "answered"
    assert post(client, "No", "helpful:no:password_reset")["action"] == "stored"
    with Session(app.state.services.engine) as session:
        (vote,) = session.exec(select(Feedback)).all()
    assert (vote.kind, vote.intent) == ("helpful", "password_reset")
    assert count(app, Handoff) == 0


def test_each_answer_can_be_voted_on_once(app: FastAPI, client: TestClient) -> None:
    post(client, PASSWORD)
    post(client, PASSWORD)
    post(client, "Yes", "helpful:yes:password_reset")
    post(client, "Yes", "helpful:yes:password_reset")
    assert post(client, "Yes", "helpful:yes:password_reset")["action"] == "stored"
    assert count(app, Feedback, Feedback.kind == "helpful") == 2


# -- Telegram: a double tap ---------------------------------------------------------------------


@pytest.fixture
def telegram(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Service]:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    with TestClient(create_app(settings, predictor=FakePredictor())) as client:
        yield Service(client, fake_bot_api)


def test_telegram_double_tap_on_didnt_help_escalates_once_and_acknowledges_both(
    telegram: Service,
) -> None:
    telegram.post_update(tg_text_update(8201, PASSWORD))
    telegram.fake.wait_for(lambda f: len(f.sent()) == 1)
    first = telegram.post_update(tg_callback_update(8201, "helpful:no:password_reset"))
    second = telegram.post_update(tg_callback_update(8201, "helpful:no:password_reset"))
    assert (first.json()["action"], second.json()["action"]) == ("escalated", "forwarded")
    telegram.fake.wait_for(lambda f: len(f.sent("answerCallbackQuery")) == 2)
    with Session(telegram.services.engine) as session:
        assert len(session.exec(select(Handoff)).all()) == 1
        assert len(session.exec(select(Feedback)).all()) == 1
