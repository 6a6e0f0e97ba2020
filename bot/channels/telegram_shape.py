"""The shape a Telegram update must have before we read it, checked from its raw JSON.

python-telegram-bot's parser trusts its input: an update whose message has no ``chat``,
whose ``text`` is a list, or which nests thousands deep becomes an object that fails later
(``AttributeError``, ``TypeError``, ``RecursionError``) — a 500, which makes Telegram redeliver
the update forever and holds the chat's later updates back. :func:`parse_checked` refuses such
updates with ``ValueError`` instead, which the webhook and the poller dead-letter and
acknowledge like any other malformed update.
"""

from __future__ import annotations

import json
from typing import Any

from telegram import Bot

from bot.channels import telegram
from bot.channels.base import InboundMessage
from handoff.text import refuse_too_deep

MESSAGE_KEYS = ("message", "edited_message", "channel_post", "edited_channel_post")
TEXT_KEYS = ("text", "caption")
USER_TEXT_KEYS = ("first_name", "last_name", "username")


def _check_user(user: Any, where: str) -> None:
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise ValueError(f"{where} must be an object with an integer 'id'")
    for key in USER_TEXT_KEYS:
        if user.get(key) is not None and not isinstance(user[key], str):
            raise ValueError(f"{where}.{key} must be a string")


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise ValueError(f"{where} must be an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise ValueError(f"{where}.chat must be an object with an integer 'id'")
    for key in TEXT_KEYS:
        if message.get(key) is not None and not isinstance(message[key], str):
            raise ValueError(f"{where}.{key} must be a string")
    if message.get("from") is not None:
        _check_user(message["from"], f"{where}.from")


def check_update(data: Any) -> dict[str, Any]:
    """``data`` if it is shaped like a Telegram update we can read; ValueError otherwise."""
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("not a Telegram update: integer 'update_id' missing")
    refuse_too_deep(data)
    for key in MESSAGE_KEYS:
        if data.get(key) is not None:
            _check_message(data[key], key)
    query = data.get("callback_query")
    if query is not None:
        if not isinstance(query, dict) or not isinstance(query.get("id"), str):
            raise ValueError("callback_query must be an object with a string 'id'")
        _check_user(query.get("from"), "callback_query.from")
        if query.get("data") is not None and not isinstance(query["data"], str):
            raise ValueError("callback_query.data must be a string")
        if query.get("message") is not None:
            _check_message(query["message"], "callback_query.message")
    return data


def decode_update(body: bytes) -> Any:
    """The JSON of a webhook body (ValueError when it is not JSON or nests too deep)."""
    try:
        return json.loads(body)
    except RecursionError as exc:  # the C decoder refuses '[' * 100000 with this
        raise ValueError("the body nests too deeply to be a Telegram update") from exc


def parse_checked(data: Any, bot: Bot | None) -> InboundMessage | None:
    """:func:`telegram.parse_update` for a checked update; ValueError for a malformed one."""
    checked = check_update(data)
    try:
        return telegram.parse_update(checked, bot)
    except (AttributeError, TypeError) as exc:  # a shape check_update does not know yet
        raise ValueError(f"malformed Telegram update: {type(exc).__name__}: {exc}") from exc
