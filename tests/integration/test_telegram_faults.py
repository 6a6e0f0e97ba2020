"""Telegram when things go wrong: Bot API failures, odd updates, long texts, crashes, secrets.

(The sticker reply, the ``my_chat_member`` update, redelivery and malformed JSON are covered in
test_telegram_webhook.py.)
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.app import TEXT_LIMITS, create_app
from handoff import replies
from handoff.models import (
    Author,
    ChannelIdentity,
    Contact,
    Conversation,
    InboundEvent,
    Message,
    OutboxEntry,
)
from tests.conftest import BOT_TOKEN, WEBHOOK_SECRET, make_settings
from tests.factories import next_update_id, tg_callback_update, tg_text_update
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.conftest import Service

PASSWORD_QUESTION = "I forgot my password, how do I reset it?"
ONLY_TEXT = "only read text"


def outbox_entries(service: Service) -> list[OutboxEntry]:
    with Session(service.services.engine) as session:
        return list(session.exec(select(OutboxEntry).order_by(OutboxEntry.id)).all())


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def entry_settled(service: Service) -> bool:
    entries = outbox_entries(service)
    return bool(entries) and all(e.status in ("sent", "dead") for e in entries)


# -- Bot API failures ---------------------------------------------------------------------


def test_rate_limited_send_waits_retry_after_and_arrives_once(service: Service) -> None:
    service.fake.fail_next(429, "Too Many Requests: retry after 1", retry_after=1)

    service.post_update(tg_text_update(3001, PASSWORD_QUESTION))
    wait_until(lambda: entry_settled(service))

    first, second = service.fake.sent()  # the refused attempt, then the delivered one
    assert second.at - first.at >= 0.9
    assert first.params["text"] == second.params["text"]
    (entry,) = outbox_entries(service)
    assert (entry.status, entry.attempts) == ("sent", 2)


def test_server_error_then_success_arrives_once(service: Service) -> None:
    service.fake.fail_next(500, "Internal Server Error")

    service.post_update(tg_text_update(3002, PASSWORD_QUESTION))
    wait_until(lambda: entry_settled(service))

    assert len(service.fake.sent()) == 2  # one 500, one delivery
    (entry,) = outbox_entries(service)
    assert (entry.status, entry.attempts) == ("sent", 2)
    assert entry.provider_message_id is not None


def test_blocked_bot_marks_the_contact_unreachable_and_does_not_retry(service: Service) -> None:
    service.fake.fail_next(403, "Forbidden: bot was blocked by the user")

    service.post_update(tg_text_update(3003, PASSWORD_QUESTION))
    wait_until(lambda: entry_settled(service))

    (entry,) = outbox_entries(service)
    assert (entry.status, entry.attempts) == ("dead", 1)
    assert "blocked" in (entry.last_error or "")
    assert len(service.fake.sent()) == 1
    with Session(service.services.engine) as session:
        identity = session.exec(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "3003")
        ).one()
        contact = session.get(Contact, identity.contact_id)
    assert contact is not None and contact.unreachable


def test_a_5000_character_reply_arrives_as_ordered_parts_that_reassemble(
    service: Service,
) -> None:
    service.post_update(tg_text_update(3004, "I want to talk to a person"))
    service.fake.wait_for(lambda f: len(f.texts(3004)) == 1)
    words = [f"step{i:04d}" for i in range(600)]
    long_text = " ".join(words)[:5000].rstrip()
    assert len(long_text) == 5000

    with Session(service.services.engine) as session:
        conversation = session.exec(select(Conversation)).one()
        replies.queue_reply(
            session, conversation, long_text, author=Author.agent.value, text_limits=TEXT_LIMITS
        )
        session.commit()
    service.services.worker.wake()
    service.fake.wait_for(lambda f: len(f.texts(3004)) == 3)

    parts = service.fake.texts(3004)[1:]
    assert len(parts) == 2
    assert all(len(part) <= 4096 for part in parts)
    assert " ".join(parts) == long_text


# -- odd updates --------------------------------------------------------------------------


def _with_message(chat_id: int, **fields: Any) -> dict[str, Any]:
    update = tg_text_update(chat_id, "x")
    del update["message"]["text"]
    update["message"].update(fields)
    return update


def photo_update(chat_id: int) -> dict[str, Any]:
    size = {"file_id": "AgACAgQ", "file_unique_id": "AQAD", "width": 90, "height": 67}
    return _with_message(chat_id, photo=[size, {**size, "width": 320, "height": 240}])


def voice_update(chat_id: int) -> dict[str, Any]:
    voice = {"file_id": "AwACAgQ", "file_unique_id": "AgAD", "duration": 3, "mime_type": "a/ogg"}
    return _with_message(chat_id, voice=voice)


@pytest.mark.parametrize(("build", "kind"), [(photo_update, "photo"), (voice_update, "voice")])
def test_media_is_stored_and_politely_asked_for_text(
    service: Service, build: Any, kind: str
) -> None:
    chat = 3010 if kind == "photo" else 3011
    response = service.post_update(build(chat))

    assert response.status_code == 200
    service.fake.wait_for(lambda f: len(f.texts(chat)) == 1)
    assert ONLY_TEXT in service.fake.texts(chat)[0]
    with Session(service.services.engine) as session:
        message = session.exec(select(Message).where(Message.direction == "inbound")).one()
    assert message.kind == kind
    assert message.raw is not None


def test_a_photo_with_a_caption_is_read_by_its_caption(service: Service) -> None:
    update = photo_update(3013)
    update["message"]["caption"] = PASSWORD_QUESTION

    response = service.post_update(update)

    assert response.json()["action"] == "answered"
    service.fake.wait_for(lambda f: len(f.texts(3013)) == 1)
    assert service.services.settings.reset_url in service.fake.texts(3013)[0]
    with Session(service.services.engine) as session:
        message = session.exec(select(Message).where(Message.direction == "inbound")).one()
    assert (message.kind, message.text, message.intent) == (
        "photo",
        PASSWORD_QUESTION,
        "password_reset",
    )


def test_an_edited_message_is_stored_as_an_edit_and_answered(service: Service) -> None:
    original = tg_text_update(3012, "hi")
    edited = {"update_id": next_update_id(), "edited_message": copy.deepcopy(original["message"])}
    edited["edited_message"]["text"] = PASSWORD_QUESTION
    edited["edited_message"]["edit_date"] = edited["edited_message"]["date"] + 5

    response = service.post_update(edited)

    assert response.status_code == 200
    service.fake.wait_for(lambda f: len(f.texts(3012)) == 1)
    assert service.services.settings.reset_url in service.fake.texts(3012)[0]
    with Session(service.services.engine) as session:
        message = session.exec(select(Message).where(Message.direction == "inbound")).one()
    assert (message.kind, message.text) == ("edit", PASSWORD_QUESTION)


@pytest.mark.parametrize(
    "payload",
    [
        {"some_future_update": {"id": 7, "chat": {"id": 3013, "type": "private"}}},
        {"channel_post": {"message_id": 1, "date": 1, "chat": {"id": -100, "type": "channel"}}},
    ],
    ids=["unknown-type", "channel-post"],
)
def test_update_types_without_a_customer_message_are_kept_and_not_answered(
    service: Service, payload: dict[str, Any]
) -> None:
    update = {"update_id": next_update_id(), **payload}

    response = service.post_update(update)

    assert response.status_code == 200
    assert response.json()["ignored"] is True
    with Session(service.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert (event.status, event.external_id) == ("ignored", str(update["update_id"]))
    assert service.fake.calls == []


# -- callback queries ---------------------------------------------------------------------


def inline_callback_update(chat_id: int, data: str) -> dict[str, Any]:
    """A button pressed under an inline-mode message: no ``message``, an inline id instead."""
    update = tg_callback_update(chat_id, data)
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "AAAAAEkIAAA"
    return update


@pytest.mark.parametrize(
    "update",
    [
        tg_callback_update(3020, "helpful:yes:password_reset"),
        tg_callback_update(3021, "csat:5:1"),
        tg_callback_update(3022, "csat:99:abc"),
        tg_callback_update(3023, "stale-button-from-an-old-version"),
        inline_callback_update(3024, "helpful:no:password_reset"),
    ],
    ids=["helpful", "csat", "bad-csat", "unknown", "inline"],
)
def test_every_callback_query_is_answered(service: Service, update: dict[str, Any]) -> None:
    query_id = update["callback_query"]["id"]

    response = service.post_update(update)

    assert response.status_code == 200
    service.fake.wait_for(lambda f: len(f.sent("answerCallbackQuery")) == 1)
    assert service.fake.sent("answerCallbackQuery")[0].params["callback_query_id"] == query_id


def test_callback_in_a_handed_off_conversation_is_answered_once_despite_redelivery(
    service: Service,
) -> None:
    service.post_update(tg_text_update(3025, "I want to talk to a person"))
    service.fake.wait_for(lambda f: len(f.texts(3025)) == 1)
    press = tg_callback_update(3025, "helpful:no:password_reset")

    first = service.post_update(press)
    second = service.post_update(press)

    assert (first.json()["action"], second.json()["duplicate"]) == ("forwarded", True)
    wait_until(lambda: entry_settled(service))
    assert len(service.fake.sent("answerCallbackQuery")) == 1
    assert len(service.fake.texts(3025)) == 1  # the bot stays silent while a person handles it


# -- crash between acknowledgement and reply ----------------------------------------------


def test_reply_is_sent_once_after_a_crash_between_acknowledging_and_sending(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    update = tg_text_update(3030, PASSWORD_QUESTION)
    with TestClient(create_app(settings, run_worker=False)) as crashed:
        assert crashed.post("/webhooks/telegram", json=update, headers=headers).status_code == 200
    assert fake_bot_api.sent() == []

    with TestClient(create_app(settings)) as restarted:
        services = restarted.app.state.services  # type: ignore[attr-defined]
        fake_bot_api.wait_for(lambda f: len(f.texts(3030)) == 1)

        def statuses() -> list[str]:
            with Session(services.engine) as session:
                return list(session.exec(select(OutboxEntry.status)).all())

        wait_until(lambda: statuses() == ["sent"])
        # Telegram redelivers the update it may not have seen acknowledged: still one reply.
        assert restarted.post("/webhooks/telegram", json=update, headers=headers).json()[
            "duplicate"
        ]

    assert len(fake_bot_api.texts(3030)) == 1


# -- secrets ------------------------------------------------------------------------------


def test_bot_token_never_appears_in_logs_during_a_send_failure(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "bot", "handoff"):
        caplog.set_level(logging.DEBUG, logger=name)
    service.fake.fail_next(500, "Internal Server Error")
    service.fake.fail_next(403, "Forbidden: bot was blocked by the user")

    service.post_update(tg_text_update(3040, PASSWORD_QUESTION))
    wait_until(lambda: entry_settled(service))

    http_records = [
        r for r in caplog.records if r.name == "httpx" and "sendMessage" in r.getMessage()
    ]
    assert http_records  # the request URLs (which carry the token) were logged...
    assert "[REDACTED]" in http_records[0].getMessage()  # ...with the token redacted
    assert any("blocked" in r.getMessage() for r in caplog.records)
    assert BOT_TOKEN not in caplog.text
    assert BOT_TOKEN.split(":")[1] not in caplog.text
    for record in caplog.records:
        assert BOT_TOKEN not in record.getMessage()
        assert BOT_TOKEN not in (record.exc_text or "")
