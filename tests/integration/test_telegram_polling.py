"""Long polling (``triagebot telegram poll``) and the webhook admin commands.

Polling shares the webhook's pipeline: the same parse, the same dedupe on ``update_id``, the
same dead-letter store, and the outbox worker sends the replies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from bot.app import Services, build_services
from bot.cli import main
from bot.polling import TelegramPoller, WebhookActive, poll_once
from bot.settings import ROOT
from handoff.models import InboundEvent, Message, OutboxEntry
from tests.conftest import BOT_TOKEN, WEBHOOK_SECRET, make_settings
from tests.factories import tg_chat_member_update, tg_text_update
from tests.fakes.telegram_api import FakeBotApi

QUESTIONS = [
    (2001, "I forgot my password, how do I reset it?"),
    (2002, "where can I download my invoices?"),
    (2003, "I want to talk to a person"),
]


@pytest.fixture
async def polled(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> AsyncIterator[Services]:
    """Services as ``triagebot telegram poll`` builds them, pointed at the fake Bot API."""
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    services = build_services(settings)
    services.models.load()
    yield services
    await services.telegram_bot.request.shutdown()
    services.engine.dispose()


def count(services: Services, model: type, *where: object) -> int:
    with Session(services.engine) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)  # type: ignore[arg-type]
        return int(session.exec(stmt).one())


async def deliver_all(services: Services) -> None:
    while await services.worker.run_once():
        pass


def cli_env(monkeypatch: pytest.MonkeyPatch, fake: FakeBotApi, **extra: str) -> None:
    values = {
        "ENVIRONMENT": "test",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)


async def test_three_polled_updates_are_stored_once_and_answered(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    updates = [tg_text_update(chat, text) for chat, text in QUESTIONS]
    fake_bot_api.queue_updates(*updates)

    offset = await poll_once(polled, polled.telegram_bot, None, poll_seconds=1)
    await deliver_all(polled)

    assert offset == updates[-1]["update_id"] + 1
    assert count(polled, Message, Message.direction == "inbound") == 3
    for chat, _ in QUESTIONS:
        assert len(fake_bot_api.texts(chat)) == 1
    assert "person will reply" in fake_bot_api.texts(2003)[0]


async def test_refetching_updates_after_a_crash_duplicates_nothing(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    fake_bot_api.queue_updates(*(tg_text_update(chat, text) for chat, text in QUESTIONS))
    await poll_once(polled, polled.telegram_bot, None, poll_seconds=1)
    await deliver_all(polled)

    # A crash before the offset reached Telegram: a restarted poller starts without one and
    # Telegram serves the same, unconfirmed updates again.
    again = await poll_once(polled, polled.telegram_bot, None, poll_seconds=1)
    await deliver_all(polled)

    assert again is not None
    assert len(fake_bot_api.sent("getUpdates")) == 2
    assert count(polled, Message, Message.direction == "inbound") == 3
    assert count(polled, OutboxEntry) == 3
    assert len(fake_bot_api.texts()) == 3


async def test_next_call_confirms_with_last_update_id_plus_one(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    updates = [tg_text_update(chat, text) for chat, text in QUESTIONS]
    fake_bot_api.queue_updates(*updates)
    offset = await poll_once(polled, polled.telegram_bot, None, poll_seconds=1)

    after = await poll_once(polled, polled.telegram_bot, offset, poll_seconds=1)

    calls = fake_bot_api.sent("getUpdates")
    assert "offset" not in calls[0].params
    assert int(calls[1].params["offset"]) == updates[-1]["update_id"] + 1
    assert calls[1].params["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert after == offset  # nothing new arrived
    assert fake_bot_api.updates == []  # Telegram forgot the confirmed updates


async def test_malformed_and_message_less_polled_updates_are_kept_and_passed(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    ignored = tg_chat_member_update(2010)
    malformed = {"update_id": ignored["update_id"] + 1, "message": {"chat": "not a chat"}}
    fake_bot_api.queue_updates(ignored, malformed)

    offset = await poll_once(polled, polled.telegram_bot, None, poll_seconds=1)

    assert offset == malformed["update_id"] + 1
    with Session(polled.engine) as session:
        events = session.exec(select(InboundEvent).order_by(InboundEvent.id)).all()
    assert [(e.external_id, e.status) for e in events] == [
        (str(ignored["update_id"]), "ignored"),
        (str(malformed["update_id"]), "dead"),
    ]
    assert "not a chat" in events[1].body


async def test_poller_retries_a_failing_get_updates_and_then_answers(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    fake_bot_api.fail_next(502, "Bad Gateway", method="getUpdates")
    fake_bot_api.queue_updates(tg_text_update(2020, "how do I reset my password"))
    poller = TelegramPoller(polled, polled.telegram_bot, poll_seconds=1, backoff_initial=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))

    try:
        await asyncio.to_thread(fake_bot_api.wait_for, lambda f: len(f.texts(2020)) == 1, 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    assert len(fake_bot_api.sent("getUpdates")) >= 2
    assert len(fake_bot_api.texts(2020)) == 1
    assert count(polled, Message, Message.direction == "inbound") == 1


async def test_poller_survives_an_unreachable_database_without_confirming_updates(
    tmp_path: Path, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    missing = tmp_path / "no-such-dir" / "triagebot.db"
    settings = make_settings(
        f"sqlite:///{missing}", model_path, telegram_api_base_url=fake_bot_api.base_url
    )
    services = build_services(settings)
    services.models.load()
    update = tg_text_update(2025, "hello")
    fake_bot_api.queue_updates(update)
    poller = TelegramPoller(services, services.telegram_bot, poll_seconds=1, db_retry_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await asyncio.to_thread(fake_bot_api.wait_for, lambda f: len(f.sent("getUpdates")) >= 3)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await services.telegram_bot.request.shutdown()
        services.engine.dispose()

    assert poller.offset is None  # never confirmed: Telegram keeps the update
    assert fake_bot_api.updates == [update]
    assert all("offset" not in c.params for c in fake_bot_api.sent("getUpdates"))


async def test_poller_refuses_to_start_while_a_webhook_is_set(
    polled: Services, fake_bot_api: FakeBotApi
) -> None:
    fake_bot_api.webhook["url"] = "https://example.com/webhooks/telegram"
    poller = TelegramPoller(polled, polled.telegram_bot, poll_seconds=1)

    with pytest.raises(WebhookActive, match="delete-webhook"):
        await poller.run(asyncio.Event())
    assert fake_bot_api.sent("getUpdates") == []


def test_poll_command_refuses_while_a_webhook_is_set(
    database_url: str,
    model_path: Path,
    fake_bot_api: FakeBotApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli_env(monkeypatch, fake_bot_api, DATABASE_URL=database_url, MODEL_PATH=str(model_path))
    fake_bot_api.webhook["url"] = "https://example.com/webhooks/telegram"

    with pytest.raises(SystemExit, match="triagebot telegram delete-webhook"):
        main(["telegram", "poll", "--timeout", "1"])
    assert fake_bot_api.sent("getUpdates") == []


def test_set_webhook_sends_the_secret_and_never_drops_pending_updates(
    fake_bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env(monkeypatch, fake_bot_api)
    fake_bot_api.queue_updates(tg_text_update(2030, "hello"))  # waiting at Telegram

    assert main(["telegram", "set-webhook", "https://bot.example.com/webhooks/telegram"]) == 0

    (call,) = fake_bot_api.sent("setWebhook")
    assert call.params["url"] == "https://bot.example.com/webhooks/telegram"
    assert call.params["secret_token"] == WEBHOOK_SECRET
    assert call.params["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert "drop_pending_updates" not in call.params
    out = capsys.readouterr()
    assert "pending_update_count: 1" in out.out
    assert "last_error_message" in out.out
    assert BOT_TOKEN not in out.out + out.err
    assert WEBHOOK_SECRET not in out.out + out.err


def test_set_webhook_refuses_without_a_secret(
    fake_bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_env(monkeypatch, fake_bot_api)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")

    with pytest.raises(SystemExit, match="TELEGRAM_WEBHOOK_SECRET"):
        main(["telegram", "set-webhook", "https://bot.example.com/webhooks/telegram"])
    assert fake_bot_api.sent("setWebhook") == []


def test_delete_webhook_keeps_pending_updates_and_info_shows_the_last_error(
    fake_bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env(monkeypatch, fake_bot_api)
    fake_bot_api.webhook.update(
        url="https://bot.example.com/webhooks/telegram",
        last_error_date=1_700_000_000,
        last_error_message="Wrong response from the webhook: 502 Bad Gateway",
    )
    assert main(["telegram", "info"]) == 0
    info = capsys.readouterr().out

    assert main(["telegram", "delete-webhook"]) == 0

    assert "Wrong response from the webhook: 502 Bad Gateway" in info
    (call,) = fake_bot_api.sent("deleteWebhook")
    assert call.params["drop_pending_updates"] in (False, "false", "False")
    assert fake_bot_api.webhook == {}


def test_admin_command_errors_never_print_the_token(
    fake_bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env(monkeypatch, fake_bot_api)
    fake_bot_api.fail_next(400, "Bad Request: bad webhook: An HTTPS URL must be provided")

    with pytest.raises(SystemExit) as raised:
        main(["telegram", "set-webhook", "http://bot.example.com/webhooks/telegram"])

    message = str(raised.value)
    assert "an https url must be provided" in message.lower()
    out = capsys.readouterr()
    assert BOT_TOKEN not in message + out.out + out.err


def test_poll_command_answers_and_stops_cleanly_on_sigterm(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    fake_bot_api.queue_updates(tg_text_update(2040, "how do I reset my password"))
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "MODEL_PATH": str(model_path),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_API_BASE_URL": fake_bot_api.base_url,
        "OUTBOX_POLL_SECONDS": "0.05",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "telegram", "poll", "--timeout", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fake_bot_api.wait_for(lambda f: len(f.texts(2040)) == 1, timeout=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 0, err
    assert "stopped" in out
    assert BOT_TOKEN not in out + err
    assert len(fake_bot_api.texts(2040)) == 1
