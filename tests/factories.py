"""Builders of real-shaped channel payloads (Telegram updates)."""

from __future__ import annotations

import itertools
import time
from typing import Any

_update_ids = itertools.count(10_000)
_message_ids = itertools.count(500)


def next_update_id() -> int:
    return next(_update_ids)


def tg_user(
    user_id: int, first_name: str = "Alex", last_name: str | None = "Doe"
) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": "en",
    }
    if last_name:
        user["last_name"] = last_name
    return user


def tg_text_update(
    chat_id: int, text: str, *, update_id: int | None = None, first_name: str = "Alex"
) -> dict[str, Any]:
    """A private-chat text message update as Telegram sends it."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "from": tg_user(chat_id, first_name),
        "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "message": message,
    }


def tg_sticker_update(chat_id: int) -> dict[str, Any]:
    update = tg_text_update(chat_id, "x")
    del update["message"]["text"]
    update["message"]["sticker"] = {
        "file_id": "CAACAgIAAxkBAAIB",
        "file_unique_id": "AgADAQAD",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
    return update


def tg_callback_update(chat_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": next_update_id(),
        "callback_query": {
            "id": str(next(_message_ids) * 7919),
            "from": tg_user(chat_id),
            "chat_instance": "-123456789",
            "data": data,
            "message": {
                "message_id": next(_message_ids),
                "from": {"id": 42, "is_bot": True, "first_name": "Triage"},
                "chat": {"id": chat_id, "type": "private", "first_name": "Alex"},
                "date": int(time.time()),
                "text": "Did this solve it?",
            },
        },
    }


def tg_chat_member_update(chat_id: int) -> dict[str, Any]:
    return {
        "update_id": next_update_id(),
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "private", "first_name": "Alex"},
            "from": tg_user(chat_id),
            "date": int(time.time()),
            "old_chat_member": {
                "user": {"id": 42, "is_bot": True, "first_name": "T"},
                "status": "member",
            },
            "new_chat_member": {
                "user": {"id": 42, "is_bot": True, "first_name": "T"},
                "status": "kicked",
                "until_date": 0,
            },
        },
    }
