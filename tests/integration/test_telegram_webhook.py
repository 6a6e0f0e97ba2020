"""Issue 2's end-to-end path: a Telegram update in, an answer or a handoff out."""

from __future__ import annotations

from sqlmodel import Session, func, select

from handoff.models import Handoff, InboundEvent, Message, OutboxEntry
from tests.factories import (
    tg_callback_update,
    tg_chat_member_update,
    tg_sticker_update,
    tg_text_update,
)
from tests.integration.conftest import Service


def count(service: Service, model: type) -> int:
    with Session(service.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_password_question_gets_the_reset_answer_through_the_bot_api(service: Service) -> None:
    response = service.post_update(tg_text_update(1001, "I forgot my password, how do I reset it?"))
    assert response.status_code == 200
    service.fake.wait_for(lambda f: len(f.texts(1001)) >= 1)
    answer = service.fake.texts(1001)[0]
    assert service.services.settings.reset_url in answer
    assert count(service, Handoff) == 0


def test_faq_answer_offers_did_it_help_buttons(service: Service) -> None:
    service.post_update(tg_text_update(1002, "how can i reset my password"))
    service.fake.wait_for(lambda f: len(f.sent()) >= 1)
    markup = service.fake.sent()[0].params["reply_markup"]
    labels = [row[0]["callback_data"] for row in markup["inline_keyboard"]]
    assert labels == ["helpful:yes:password_reset", "helpful:no:password_reset"]


def test_asking_for_a_person_creates_a_handoff_and_tells_the_customer(service: Service) -> None:
    response = service.post_update(tg_text_update(1003, "I want to talk to a person"))
    assert response.json()["action"] == "escalated"
    with Session(service.services.engine) as session:
        handoff = session.exec(select(Handoff)).one()
    assert "requested_human" in handoff.reasons
    assert handoff.status == "waiting"
    service.fake.wait_for(lambda f: len(f.texts(1003)) == 1)
    assert "person will reply" in service.fake.texts(1003)[0]


def test_a_strategic_term_reaches_a_person_even_when_the_classifier_sees_an_faq(
    service: Service,
) -> None:
    text = "export everything, our lawyer asked for it"
    response = service.post_update(tg_text_update(1010, text))
    assert response.json()["action"] == "escalated"
    with Session(service.services.engine) as session:
        message = session.exec(select(Message).where(Message.text == text)).one()
        handoff = session.exec(select(Handoff)).one()
    assert message.intent == "data_export"  # what the classifier made of it
    assert message.raw is not None and message.raw["strategic_term"] == "lawyer"
    assert "strategic_intent" in handoff.reasons and handoff.priority == 2
    service.fake.wait_for(lambda f: len(f.texts(1010)) == 1)
    assert "person will reply" in service.fake.texts(1010)[0]


def test_same_update_twice_is_stored_once_and_answered_once(service: Service) -> None:
    update = tg_text_update(1004, "where can I download my invoices?")
    first = service.post_update(update)
    second = service.post_update(update)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicate"] is True
    with Session(service.services.engine) as session:
        inbound = session.exec(select(Message).where(Message.direction == "inbound")).all()
    assert len(inbound) == 1
    service.fake.wait_for(lambda f: len(f.texts(1004)) >= 1)
    assert count(service, OutboxEntry) == 1
    assert len(service.fake.texts(1004)) == 1


def test_wrong_secret_is_refused_and_nothing_is_stored(service: Service) -> None:
    response = service.post_update(tg_text_update(1005, "hello"), secret="wrong")
    assert response.status_code == 403
    assert count(service, Message) == 0
    assert count(service, InboundEvent) == 0


def test_missing_secret_is_refused(service: Service) -> None:
    response = service.post_update(tg_text_update(1006, "hello"), secret=None)
    assert response.status_code == 403
    assert count(service, Message) == 0


def test_malformed_json_with_valid_secret_is_acknowledged_and_dead_lettered(
    service: Service,
) -> None:
    response = service.client.post(
        "/webhooks/telegram",
        content=b'{"update_id": 5, "message": ',
        headers={
            "X-Telegram-Bot-Api-Secret-Token": "test-webhook-secret-0123456789",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    with Session(service.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert event.status == "dead"
    assert event.body.startswith('{"update_id": 5')


def test_update_without_message_is_stored_as_ignored(service: Service) -> None:
    response = service.post_update(tg_chat_member_update(1007))
    assert response.status_code == 200
    with Session(service.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert event.status == "ignored"


def test_sticker_gets_a_polite_text_only_reply(service: Service) -> None:
    service.post_update(tg_sticker_update(1008))
    service.fake.wait_for(lambda f: len(f.texts(1008)) == 1)
    assert "only read text" in service.fake.texts(1008)[0]


def test_an_emoji_only_message_is_asked_for_words_like_a_sticker(service: Service) -> None:
    service.post_update(tg_text_update(1010, "\U0001f62d\U0001f62d\U0001f64f"))
    service.fake.wait_for(lambda f: len(f.texts(1010)) == 1)
    assert "describe your question" in service.fake.texts(1010)[0]
    with Session(service.services.engine) as session:
        assert session.exec(select(Handoff)).first() is None


def test_didnt_help_button_escalates_as_a_request_for_a_person_at_p2(service: Service) -> None:
    service.post_update(tg_text_update(1009, "how do I reset my password"))
    service.fake.wait_for(lambda f: len(f.texts(1009)) == 1)
    service.post_update(tg_callback_update(1009, "helpful:no:password_reset"))
    service.fake.wait_for(lambda f: len(f.sent("answerCallbackQuery")) == 1)
    with Session(service.services.engine) as session:
        handoff = session.exec(select(Handoff)).one()
    assert (handoff.reasons, handoff.priority) == (["requested_human"], 2)
    assert handoff.intent == "password_reset"


def test_healthz_reports_database_and_model(service: Service) -> None:
    body = service.client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["revision"] is not None
    assert body["model"]["status"] == "ok"


def test_oversized_body_is_refused_before_parsing(service: Service) -> None:
    big = b"x" * (service.services.settings.max_body_bytes + 1)
    response = service.client.post(
        "/webhooks/telegram",
        content=big,
        headers={"X-Telegram-Bot-Api-Secret-Token": "test-webhook-secret-0123456789"},
    )
    assert response.status_code == 413
    assert count(service, InboundEvent) == 0
