"""The "Did you mean one of these?" question on Telegram (a real python-telegram-bot ``Bot``
against the fake Bot API: an inline keyboard, then a callback query) and on WhatsApp (the
fake Graph API: reply buttons or a list message, then a button_reply or list_reply)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.answers import CLARIFY_TEXT
from bot.app import create_app
from handoff.models import Handoff, Message
from tests.conftest import make_settings
from tests.factories import tg_callback_update, tg_text_update
from tests.fakes.predictor import AMBIGUOUS_BILLING, AMBIGUOUS_LOGIN, FakePredictor
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.whatsapp_api import FakeGraphApi, start_fake_graph_api
from tests.integration.conftest import Service
from tests.integration.test_whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WhatsAppService,
    new_wamid,
    wa_change,
    wa_message,
    wa_notification,
)

# -- Telegram -------------------------------------------------------------------------------


@pytest.fixture
def telegram(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Service]:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    with TestClient(create_app(settings, predictor=FakePredictor())) as client:
        yield Service(client, fake_bot_api)


def keyboard(service: Service, index: int) -> list[tuple[str, str]]:
    markup = service.fake.sent()[index].params["reply_markup"]
    return [(row[0]["text"], row[0]["callback_data"]) for row in markup["inline_keyboard"]]


def handoff_of(engine: Any) -> Handoff:
    with Session(engine) as session:
        return session.exec(select(Handoff)).one()


def test_telegram_customer_gets_an_inline_keyboard_of_candidates_and_a_person(
    telegram: Service,
) -> None:
    response = telegram.post_update(tg_text_update(8101, AMBIGUOUS_BILLING))
    assert response.json()["action"] == "clarified"
    telegram.fake.wait_for(lambda f: len(f.sent()) == 1)
    assert telegram.fake.texts(8101) == [CLARIFY_TEXT]
    assert keyboard(telegram, 0) == [
        ("Invoices", "clarify:invoice_request"),
        ("A failed payment", "clarify:payment_failed"),
        ("Payment method", "clarify:change_payment_method"),
        ("Talk to a person", "human:clarify"),
    ]


def test_telegram_tapping_a_candidate_answers_that_faq(telegram: Service) -> None:
    telegram.post_update(tg_text_update(8102, AMBIGUOUS_BILLING))
    telegram.fake.wait_for(lambda f: len(f.sent()) == 1)
    press = tg_callback_update(8102, "clarify:invoice_request")

    assert telegram.post_update(press).json()["action"] == "answered"

    telegram.fake.wait_for(lambda f: len(f.sent()) == 2 and f.sent("answerCallbackQuery"))
    assert telegram.fake.texts(8102)[1].startswith("All invoices and receipts")
    assert keyboard(telegram, 1) == [
        ("Yes, solved", "helpful:yes:invoice_request"),
        ("No, talk to a person", "helpful:no:invoice_request"),
    ]
    query_id = press["callback_query"]["id"]
    assert telegram.fake.sent("answerCallbackQuery")[0].params["callback_query_id"] == query_id
    with Session(telegram.services.engine) as session:
        tapped = session.exec(select(Message).where(Message.kind == "callback")).one()
    assert tapped.intent == "invoice_request"


def test_telegram_talk_to_a_person_tap_hands_over(telegram: Service) -> None:
    telegram.post_update(tg_text_update(8103, AMBIGUOUS_LOGIN))
    telegram.fake.wait_for(lambda f: len(f.sent()) == 1)

    response = telegram.post_update(tg_callback_update(8103, "human:clarify"))

    assert response.json()["action"] == "escalated"
    assert handoff_of(telegram.services.engine).reasons == ["requested_human", "ambiguous"]
    telegram.fake.wait_for(lambda f: len(f.texts(8103)) == 2)
    assert "person will reply" in telegram.fake.texts(8103)[1]


# -- WhatsApp -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph_api() -> Iterator[FakeGraphApi]:
    fake, server = start_fake_graph_api(ACCESS_TOKEN)
    yield fake
    server.__exit__(None, None, None)


@pytest.fixture
def whatsapp(
    database_url: str, model_path: Path, graph_api: FakeGraphApi
) -> Iterator[WhatsAppService]:
    graph_api.reset()
    settings = make_settings(
        database_url,
        model_path,
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_api_base_url=graph_api.base_url,
    )
    with TestClient(create_app(settings, predictor=FakePredictor())) as client:
        yield WhatsAppService(client, graph_api)


def wa_interactive_reply(wa_id: str, reply_type: str, data: str, title: str) -> dict[str, Any]:
    """A tapped reply button (``button_reply``) or a chosen list row (``list_reply``)."""
    message = wa_message(
        wa_id, "interactive", {"type": reply_type, reply_type: {"id": data, "title": title}}
    )
    message["context"] = {"from": "15550783881", "id": new_wamid()}
    return message


def test_whatsapp_three_candidates_and_a_person_come_as_a_list_message(
    whatsapp: WhatsAppService,
) -> None:
    whatsapp.say("15558101", AMBIGUOUS_BILLING)
    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558101")) == 1)
    interactive = whatsapp.fake.delivered("15558101")[0].body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"]["text"] == CLARIFY_TEXT
    assert 0 < len(interactive["action"]["button"]) <= 20
    (section,) = interactive["action"]["sections"]
    assert [(r["id"], r["title"]) for r in section["rows"]] == [
        ("clarify:invoice_request", "Invoices"),
        ("clarify:payment_failed", "A failed payment"),
        ("clarify:change_payment_method", "Payment method"),
        ("human:clarify", "Talk to a person"),
    ]


def test_whatsapp_two_candidates_and_a_person_come_as_reply_buttons(
    whatsapp: WhatsAppService,
) -> None:
    whatsapp.say("15558102", AMBIGUOUS_LOGIN)
    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558102")) == 1)
    interactive = whatsapp.fake.delivered("15558102")[0].body["interactive"]
    assert interactive["type"] == "button"
    replies = [b["reply"] for b in interactive["action"]["buttons"]]
    assert [(r["id"], r["title"]) for r in replies] == [
        ("clarify:password_reset", "Password reset"),
        ("clarify:login_problem", "Trouble logging in"),
        ("human:clarify", "Talk to a person"),
    ]


def test_whatsapp_choosing_a_list_row_answers_that_faq(whatsapp: WhatsAppService) -> None:
    whatsapp.say("15558103", AMBIGUOUS_BILLING)
    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558103")) == 1)
    row = wa_interactive_reply("15558103", "list_reply", "clarify:payment_failed", "A failed pay")

    assert whatsapp.post(wa_notification([wa_change([row])])).status_code == 200

    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558103")) == 2)
    answer = whatsapp.fake.delivered("15558103")[1].body["interactive"]
    assert answer["body"]["text"].startswith("Sorry about that. Declined payments")
    assert [b["reply"]["id"] for b in answer["action"]["buttons"]] == [
        "helpful:yes:payment_failed",
        "helpful:no:payment_failed",
    ]
    assert whatsapp.count(Handoff) == 0


def test_whatsapp_talk_to_a_person_button_hands_over(whatsapp: WhatsAppService) -> None:
    whatsapp.say("15558104", AMBIGUOUS_LOGIN)
    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558104")) == 1)
    button = wa_interactive_reply("15558104", "button_reply", "human:clarify", "Talk to a person")

    whatsapp.post(wa_notification([wa_change([button])]))

    assert handoff_of(whatsapp.services.engine).reasons == ["requested_human", "ambiguous"]
    whatsapp.fake.wait_for(lambda f: len(f.delivered("15558104")) == 2)
    assert "person will reply" in whatsapp.fake.texts("15558104")[1]
