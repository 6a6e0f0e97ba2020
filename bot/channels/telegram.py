"""Telegram: inbound updates (webhook or polling) and outbound messages through a PTB ``Bot``.

The web framework owns HTTP; this module turns an update's JSON into an
:class:`InboundMessage` with python-telegram-bot's own parser, and sends replies through a
real ``telegram.Bot`` whose base URL and HTTP transport are injectable (tests point it at a
fake Bot API server on loopback).
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from bot.channels.base import (
    InboundMessage,
    OutboundMessage,
    PermanentError,
    RetryLater,
    SendResult,
    Unreachable,
)

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def verify_secret(expected: str | None, received: str | None) -> bool:
    """Constant-time check of the webhook secret; fails closed when none is configured."""
    if not expected or received is None:
        return False
    return hmac.compare_digest(expected.encode(), received.encode())


def build_bot(token: str, base_url: str, httpx_kwargs: dict[str, Any] | None = None) -> Bot:
    """A PTB ``Bot`` talking to ``base_url`` (Telegram's, a self-hosted or a fake Bot API)."""
    # Opt in to PTB's coming timedelta time periods: without it, building every RetryAfter
    # (a 429) emits a PTBDeprecationWarning. We read retry_after either way (_map_error).
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    request = HTTPXRequest(
        connection_pool_size=64,
        read_timeout=15.0,
        write_timeout=15.0,
        connect_timeout=5.0,
        pool_timeout=5.0,
        httpx_kwargs=httpx_kwargs,
    )
    return Bot(token=token, base_url=base_url, request=request, get_updates_request=request)


_MEDIA_KINDS = (
    "photo",
    "sticker",
    "voice",
    "video",
    "document",
    "audio",
    "animation",
    "video_note",
    "contact",
    "location",
)


def parse_update(data: dict[str, Any], bot: Bot | None) -> InboundMessage | None:
    """Normalize a Telegram update; None for update types that carry nothing to answer.

    Raises ValueError when the payload is not a Telegram update at all.
    """
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("not a Telegram update: integer 'update_id' missing")
    try:
        update = Update.de_json(data, bot)
    except Exception as exc:  # untrusted input: PTB raises whatever the shape provokes
        raise ValueError(f"malformed Telegram update: {type(exc).__name__}: {exc}") from exc
    external_id = str(update.update_id)
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message is not None else None
        return InboundMessage(
            channel=CHANNEL,
            external_id=external_id,
            sender_id=str(chat.id if chat else query.from_user.id),
            text=query.data or "",
            kind="callback",
            sender_name=query.from_user.full_name,
            callback_data=query.data,
            callback_id=query.id,
            raw=data,
        )
    message = update.message or update.edited_message
    if message is None:
        return None  # channel posts, chat member updates, polls... stored as ignored events
    sender_name = message.from_user.full_name if message.from_user else None
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "external_id": external_id,
        "sender_id": str(message.chat.id),
        "sender_name": sender_name,
        "raw": data,
    }
    if update.edited_message is not None:
        return InboundMessage(text=message.text or message.caption or "", kind="edit", **common)
    text = message.text or ""
    if text.startswith("/"):
        head, _, args = text.partition(" ")
        command = head[1:].split("@", 1)[0].lower()
        return InboundMessage(
            text=text,
            kind="command",
            command=command,
            command_args=args.strip(),
            **common,
        )
    if message.text is not None:
        return InboundMessage(text=text, kind="text", **common)
    kind = next((k for k in _MEDIA_KINDS if getattr(message, k, None)), "other")
    return InboundMessage(text=message.caption or "", kind=kind, **common)


class TelegramSender:
    """Sends text (with inline buttons) and answers callback queries through a PTB Bot."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.text, callback_data=b.data)] for b in message.buttons]
            )
        try:
            sent = await self._bot.send_message(
                chat_id=int(target) if target.lstrip("-").isdigit() else target,
                text=message.text,
                reply_markup=markup,
            )
        except TelegramError as exc:
            raise _map_error(exc) from exc
        return SendResult(provider_message_id=str(sent.message_id))

    async def acknowledge(self, callback_id: str, text: str | None = None) -> None:
        """Answer a callback query so the customer's button stops spinning."""
        try:
            await self._bot.answer_callback_query(callback_query_id=callback_id, text=text)
        except TelegramError as exc:
            raise _map_error(exc) from exc


def _map_error(exc: TelegramError) -> Exception:
    if isinstance(exc, RetryAfter):
        delay = exc.retry_after
        seconds = delay if isinstance(delay, int) else delay.total_seconds()
        return RetryLater("Telegram flood control", delay=float(seconds))
    if isinstance(exc, InvalidToken):
        return RetryLater("Telegram rejected the bot token: check TELEGRAM_BOT_TOKEN")
    if isinstance(exc, Forbidden):
        return Unreachable(f"Telegram refused: {exc.message}")
    if isinstance(exc, BadRequest):
        return PermanentError(f"Telegram bad request: {exc.message}")
    if isinstance(exc, NetworkError):
        return RetryLater(f"Telegram unavailable: {exc.message}")
    return PermanentError(f"Telegram error: {exc.message}")
