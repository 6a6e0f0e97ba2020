"""What a web chat customer meets in the first hour (issue 14, items 1, 2, 4, 5, 6 and 8)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select

from bot.app import create_app
from bot.channels import webchat_secret
from bot.channels.webchat import COOKIE_NAME
from handoff import desk, outbox, replies
from handoff.access import Principal
from handoff.models import Conversation, Feedback, Handoff, OutboxEntry, User
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_webchat import SECRET, history, say

OTHER_SECRET = "another-webchat-secret-9876543210"


def build(database_url: str, model_path: Path, fake: FakeBotApi, secret: str) -> FastAPI:
    return create_app(
        make_settings(
            database_url, model_path, telegram_api_base_url=fake.base_url, webchat_secret=secret
        )
    )


@pytest.fixture
def app(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> FastAPI:
    return build(database_url, model_path, fake_bot_api, SECRET)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def only_handoff(app: FastAPI) -> Handoff:
    with Session(app.state.services.engine) as session:
        return session.exec(select(Handoff)).one()


def agent_of(app: FastAPI) -> Principal:
    with Session(app.state.services.engine) as session:
        user = User(email="alice@example.test", name="Alice Agent", role="agent")
        session.add(user)
        session.commit()
        session.refresh(user)
        return Principal.of(user)


# -- 1. CSAT ---------------------------------------------------------------------------------


def test_the_csat_question_after_a_resolve_shows_in_the_chat_with_five_buttons(
    app: FastAPI, client: TestClient
) -> None:
    say(client, "/human")
    agent = agent_of(app)
    handoff_id = only_handoff(app).id or 0
    with Session(app.state.services.engine) as session:
        desk.claim(session, agent, handoff_id)
        desk.resolve(session, agent, handoff_id, "answered", ask_csat=True)
        session.commit()
    question = history(client)[-1]
    assert "rate" in question["text"]
    assert [b["data"] for b in question["buttons"]] == [
        f"csat:{n}:{handoff_id}" for n in range(1, 6)
    ]
    rated = client.post(
        "/chat/api/messages",
        json={"client_id": "rating-0001", "text": "5", "callback_data": f"csat:5:{handoff_id}"},
    )
    assert rated.json()["action"] == "answered"
    with Session(app.state.services.engine) as session:
        assert session.exec(select(Feedback.score)).one() == 5


# -- 2. a restart keeps the chats; a reply nobody can read is flagged --------------------------


def test_prod_refuses_to_start_without_a_webchat_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="WEBCHAT_SECRET must be set in prod"):
        make_settings(
            f"sqlite:///{tmp_path / 'x.db'}",
            tmp_path / "m.joblib",
            environment="prod",
            session_secret="s" * 40,
        )


def test_dev_generates_the_webchat_secret_once_owner_only_and_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "webchat_secret"
    first = webchat_secret.resolve(None, "dev", path)
    again = webchat_secret.resolve(None, "dev", path)
    assert first is not None and len(first) >= 16
    assert again == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_dev_restart_keeps_the_visitors_chat(
    tmp_path: Path, database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    def dev_app() -> FastAPI:
        settings = make_settings(
            database_url,
            model_path,
            telegram_api_base_url=fake_bot_api.base_url,
            environment="dev",
            webchat_secret_path=tmp_path / "webchat_secret",
        )
        return create_app(settings)

    with TestClient(dev_app()) as before:
        say(before, "where can I download my invoices?")
        cookie = before.cookies[COOKIE_NAME]
    with TestClient(dev_app(), cookies={COOKIE_NAME: cookie}) as after:
        assert [m["author"] for m in history(after)] == ["customer", "bot"]


def test_a_reply_to_a_visitor_of_an_earlier_secret_is_flagged_undelivered(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    before = build(database_url, model_path, fake_bot_api, SECRET)
    with TestClient(before) as client:
        say(client, "/human")
    after = build(database_url, model_path, fake_bot_api, OTHER_SECRET)
    engine = after.state.services.engine
    with Session(engine) as session:
        conversation = session.exec(select(Conversation)).one()
        reply = replies.queue_reply(session, conversation, "Hi, Alice here.", author="agent")
        session.commit()
        reply_id = reply.id or 0
    try:
        asyncio.run(after.state.services.worker.run_once())
        with Session(engine) as session:
            failures = outbox.delivery_failures(session, [reply_id])
            entry = session.exec(
                select(OutboxEntry).where(OutboxEntry.message_id == reply_id)
            ).one()
    finally:
        engine.dispose()  # this app never ran its lifespan, which would have closed it
    assert entry.status != "sent"
    assert "secret changed" in failures[reply_id]


# -- 4, 6, 8. what the bot does with what the customer wrote ----------------------------------


def test_an_emoji_only_message_is_asked_for_words_not_queued(
    app: FastAPI, client: TestClient
) -> None:
    assert say(client, "\U0001f62d\U0001f62d").json()["action"] == "answered"
    assert "describe your question" in history(client)[-1]["text"]
    with Session(app.state.services.engine) as session:
        assert session.exec(select(Handoff)).first() is None


@pytest.mark.parametrize(
    "text",
    [
        "please delete all my personal data",
        "erase my data",
        "remove everything you store about me",
    ],
)
def test_an_erasure_request_goes_to_a_person(app: FastAPI, client: TestClient, text: str) -> None:
    assert say(client, text).json()["action"] == "escalated"
    assert "strategic_intent" in only_handoff(app).reasons


def test_asking_for_a_person_is_p2_and_the_customer_is_told_the_wait(
    app: FastAPI, client: TestClient
) -> None:
    say(client, "/human")
    handoff = only_handoff(app)
    assert (handoff.priority, handoff.reasons) == (2, ["requested_human"])
    assert "usually within 60 minutes" in history(client)[-1]["text"]


def test_no_talk_to_a_person_is_labelled_requested_human(app: FastAPI, client: TestClient) -> None:
    say(client, "how can i reset my password")
    tapped = client.post(
        "/chat/api/messages",
        json={
            "client_id": "no-thanks-01",
            "text": "No, talk to a person",
            "callback_data": "helpful:no:password_reset",
        },
    )
    assert tapped.json()["action"] == "escalated"
    handoff = only_handoff(app)
    assert (handoff.reasons, handoff.priority) == (["requested_human"], 2)


def page_status(page: str) -> str:
    return page.split('id="chat-status"', 1)[1].split(">", 1)[1].split("</p>", 1)[0]


# -- 5. the header after a reload -------------------------------------------------------------


def test_after_a_reload_the_header_says_a_person_is_with_you(
    app: FastAPI, client: TestClient
) -> None:
    say(client, "/human")
    agent = agent_of(app)
    with Session(app.state.services.engine) as session:
        desk.claim(session, agent, only_handoff(app).id or 0)
        session.commit()
    assert page_status(client.get("/chat").text) == "A person from support is with you"


def test_before_any_handoff_the_header_invites_questions(client: TestClient) -> None:
    assert page_status(client.get("/chat").text).startswith("Ask anything")
