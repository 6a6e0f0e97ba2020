"""Clarify instead of guessing, through the web chat API: "Did you mean one of these?", what
each answer to it does, its time limit, and the abstain reasons agents see on handoffs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from bot.answers import CLARIFY_TEXT
from bot.app import create_app
from handoff.models import Account, Contact, Conversation, Handoff, Message, Prompt, utcnow
from tests.conftest import make_settings
from tests.fakes.predictor import (
    AMBIGUOUS_BILLING,
    AMBIGUOUS_LOGIN,
    AMBIGUOUS_PLAN,
    PASSWORD,
    UNKNOWN,
    FakePredictor,
)
from tests.fakes.telegram_api import FakeBotApi

API = "/chat/api/messages"
SECRET = "test-webchat-secret-0123456789"
TIMEOUT = timedelta(seconds=600)
BILLING_BUTTONS = [
    ("Invoices", "clarify:invoice_request"),
    ("A failed payment", "clarify:payment_failed"),
    ("Payment method", "clarify:change_payment_method"),
    ("Talk to a person", "human:clarify"),
]


def build_app(database_url: str, model_path: Path, fake: FakeBotApi, **overrides: Any) -> FastAPI:
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake.base_url,
        webchat_secret=SECRET,
        **overrides,
    )
    return create_app(settings, predictor=FakePredictor())


@pytest.fixture
def app(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> FastAPI:
    return build_app(database_url, model_path, fake_bot_api)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def say(client: TestClient, text: str) -> dict[str, Any]:
    response = client.post(API, json={"client_id": uuid.uuid4().hex, "text": text})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def tap(client: TestClient, data: str, label: str = "tap") -> dict[str, Any]:
    response = client.post(
        API, json={"client_id": uuid.uuid4().hex, "text": label, "callback_data": data}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def history(client: TestClient) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = client.get(API).json()["messages"]
    return messages


def handoffs(app: FastAPI) -> list[Handoff]:
    with Session(app.state.services.engine) as session:
        return list(session.exec(select(Handoff).order_by(col(Handoff.id))).all())


def prompts(app: FastAPI, kind: str = "clarify") -> list[Prompt]:
    with Session(app.state.services.engine) as session:
        return list(session.exec(select(Prompt).where(Prompt.kind == kind)).all())


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def sweep(app: FastAPI, after: timedelta) -> list[int]:
    opened: list[int] = app.state.services.triage.expire_clarifications(
        TIMEOUT, now=utcnow() + after
    )
    return opened


def link_account(app: FastAPI, **account: Any) -> None:
    """Put the (only) web chat visitor's contact in a new account."""
    with Session(app.state.services.engine) as session:
        created = Account(external_id=uuid.uuid4().hex[:12], name="Initech", **account)
        session.add(created)
        session.flush()
        conversation = session.exec(select(Conversation)).one()
        contact = session.get(Contact, conversation.contact_id)
        assert contact is not None
        contact.account_id = created.id
        session.add(contact)
        session.commit()


# -- asking -------------------------------------------------------------------------------------


def test_ambiguous_question_is_answered_with_did_you_mean_buttons(
    app: FastAPI, client: TestClient
) -> None:
    assert say(client, AMBIGUOUS_BILLING)["action"] == "clarified"
    question = history(client)[-1]
    assert question["text"] == CLARIFY_TEXT
    assert [(b["text"], b["data"]) for b in question["buttons"]] == BILLING_BUTTONS
    assert handoffs(app) == []


def test_two_close_candidates_are_offered_with_a_person(client: TestClient) -> None:
    say(client, AMBIGUOUS_LOGIN)
    buttons = [b["data"] for b in history(client)[-1]["buttons"]]
    assert buttons == ["clarify:password_reset", "clarify:login_problem", "human:clarify"]


def test_ambiguous_between_intents_the_bot_never_answers_goes_to_a_person(
    app: FastAPI, client: TestClient
) -> None:
    assert say(client, AMBIGUOUS_PLAN)["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert handoff.reasons == ["ambiguous"]
    assert handoff.intent == "contract_renewal"
    assert prompts(app) == []


def test_unknown_topic_goes_to_a_person_as_unknown_topic(app: FastAPI, client: TestClient) -> None:
    assert say(client, UNKNOWN)["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert handoff.reasons == ["unknown_topic"]
    assert (handoff.priority, handoff.intent) == (3, "out_of_scope")


def test_an_at_risk_accounts_ambiguous_question_goes_to_a_person_without_asking(
    app: FastAPI, client: TestClient
) -> None:
    say(client, PASSWORD)
    link_account(app, tier="smb", health_status="red", health_score=20)
    assert say(client, AMBIGUOUS_BILLING)["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert set(handoff.reasons) == {"ambiguous", "at_risk_account"}
    assert handoff.priority == 1


# -- answers to the question --------------------------------------------------------------------


def test_choosing_a_candidate_answers_that_faq_with_did_it_help_buttons(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    assert tap(client, "clarify:payment_failed", "A failed payment")["action"] == "answered"
    answer = history(client)[-1]
    assert answer["text"].startswith("Sorry about that. Declined payments")
    assert [b["data"] for b in answer["buttons"]] == [
        "helpful:yes:payment_failed",
        "helpful:no:payment_failed",
    ]
    with Session(app.state.services.engine) as session:
        stored = session.exec(select(Message).where(Message.kind == "callback")).one()
        bot_answer = session.exec(select(Message).order_by(col(Message.id).desc())).first()
    assert stored.intent == "payment_failed"
    assert bot_answer is not None and bot_answer.intent == "payment_failed"
    assert handoffs(app) == []
    assert [(p.outcome, p.choice) for p in prompts(app)] == [("chosen", "clarify:payment_failed")]


def test_a_candidate_is_answered_once_however_often_it_is_tapped(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    tap(client, "clarify:invoice_request")
    again = tap(client, "clarify:payment_failed")
    assert again["action"] == "stored"
    bot_texts = [m["text"] for m in history(client) if m["author"] == "bot"]
    assert len(bot_texts) == 2
    assert "Declined payments" not in bot_texts[-1]


def test_a_candidate_that_was_not_offered_is_not_answered(app: FastAPI, client: TestClient) -> None:
    say(client, AMBIGUOUS_LOGIN)
    assert tap(client, "clarify:invoice_request")["action"] == "stored"
    assert [m["author"] for m in history(client)] == ["customer", "bot", "customer"]
    assert prompts(app)[0].answered_at is None  # the real question is still open


def test_talk_to_a_person_hands_over_as_requested_and_ambiguous(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    assert tap(client, "human:clarify", "Talk to a person")["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert handoff.reasons == ["requested_human", "ambiguous"]
    assert handoff.intent == "invoice_request"
    assert "person will reply" in history(client)[-1]["text"]


def test_a_second_ambiguous_message_in_a_row_goes_to_a_person_as_ambiguous(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    assert say(client, AMBIGUOUS_LOGIN)["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert handoff.reasons == ["ambiguous"]
    assert [p.outcome for p in prompts(app)] == ["superseded"]


def test_a_clear_next_message_is_answered_and_drops_the_question(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    assert say(client, PASSWORD)["action"] == "answered"
    assert tap(client, "clarify:invoice_request")["action"] == "stored"  # dropped
    assert [p.outcome for p in prompts(app)] == ["superseded"]
    assert handoffs(app) == []


def test_ambiguous_again_after_a_chosen_answer_asks_again(app: FastAPI, client: TestClient) -> None:
    say(client, AMBIGUOUS_BILLING)
    tap(client, "clarify:invoice_request")
    assert say(client, AMBIGUOUS_LOGIN)["action"] == "clarified"


def test_a_chosen_candidate_still_goes_through_the_accounts_policy(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    link_account(app, tier="smb", health_status="red", health_score=20)  # at risk meanwhile
    assert tap(client, "clarify:invoice_request")["action"] == "escalated"
    (handoff,) = handoffs(app)
    assert handoff.reasons == ["at_risk_account"]
    assert handoff.intent == "invoice_request"


# -- the time limit -----------------------------------------------------------------------------


def test_an_unanswered_question_goes_to_a_person_after_the_timeout(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    assert sweep(app, after=TIMEOUT - timedelta(seconds=5)) == []
    (opened,) = sweep(app, after=TIMEOUT + timedelta(seconds=5))
    (handoff,) = handoffs(app)
    assert handoff.id == opened
    assert handoff.reasons == ["ambiguous"]
    assert handoff.intent == "invoice_request"
    assert "person will reply" in history(client)[-1]["text"]
    assert [p.outcome for p in prompts(app)] == ["expired"]


def test_an_answered_question_is_not_handed_over_at_the_timeout(
    app: FastAPI, client: TestClient
) -> None:
    say(client, AMBIGUOUS_BILLING)
    tap(client, "clarify:invoice_request")
    assert sweep(app, after=TIMEOUT * 2) == []
    assert handoffs(app) == []


def test_a_tap_after_the_timeout_does_nothing_more(app: FastAPI, client: TestClient) -> None:
    say(client, AMBIGUOUS_BILLING)
    sweep(app, after=TIMEOUT * 2)
    assert tap(client, "clarify:invoice_request")["action"] == "forwarded"
    assert len(handoffs(app)) == 1
    assert "person will reply" in history(client)[-2]["text"]


def test_the_running_app_hands_over_an_unanswered_question_on_its_own(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    app = build_app(database_url, model_path, fake_bot_api, clarify_timeout_seconds=0.5)
    with TestClient(app) as client:
        say(client, AMBIGUOUS_LOGIN)
        wait_until(lambda: len(handoffs(app)) == 1)
        assert handoffs(app)[0].reasons == ["ambiguous"]


def test_two_instances_sweeping_one_after_the_other_hand_over_once(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    first = build_app(database_url, model_path, fake_bot_api)
    second = build_app(database_url, model_path, fake_bot_api)
    with TestClient(first) as client, TestClient(second):
        say(client, AMBIGUOUS_BILLING)
        opened = sweep(first, after=TIMEOUT * 2) + sweep(second, after=TIMEOUT * 2)
        assert len(opened) == 1
        assert len(handoffs(first)) == 1


def test_two_instances_sweeping_at_once_hand_over_once(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("one writer per SQLite file: several instances need PostgreSQL")
    apps = [build_app(database_url, model_path, fake_bot_api) for _ in range(2)]
    with TestClient(apps[0]) as client, TestClient(apps[1]):
        for _ in range(5):  # five visitors, five open questions
            client.cookies.clear()
            say(client, AMBIGUOUS_BILLING)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda a: sweep(a, after=TIMEOUT * 2), apps))
        assert sorted(results[0] + results[1]) == [h.id for h in handoffs(apps[0])]
        assert len(handoffs(apps[0])) == 5
