"""What a customer *did*, in words, where the stored message is a button tap or a command.

A tap is stored with its button's data (``csat:5:18`` on Telegram) or its label (``5`` on the
web chat and WhatsApp), and a deep link as ``/start <token>``; neither means anything to a
person reading a transcript or "recent contacts". :func:`describe` turns them into what the
customer did ("rated 5/5", "said the answer did not help", "chose: Password reset", "linked
their chat"). Ordinary messages are left alone (``None``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlmodel import Session, col, select

from handoff.models import Prompt

__all__ = ["describe", "tapped_data"]

# The button data we offer (handoff.prompts kinds; bot.clarification's "Talk to a person").
_DATA = re.compile(r"^(csat|helpful|clarify|human):\S*$")


def _intent_words(intent: str) -> str:
    words = intent.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _tap(data: str, label: str) -> str | None:
    kind, _, arg = data.partition(":")
    if kind == "csat":
        score = arg.partition(":")[0]
        if score.isdigit() and 1 <= int(score) <= 5:
            return f"rated {score}/5"
        return "tapped a rating button"
    if kind == "helpful":
        verdict = arg.partition(":")[0]
        if verdict == "yes":
            return "said the answer helped"
        if verdict == "no":
            return "said the answer did not help"
        return None
    if kind == "clarify":
        shown = label if label and not _DATA.match(label) else _intent_words(arg)
        return f"chose: {shown}" if shown else None
    if kind == "human":
        return "asked for a person"
    return None


def describe(kind: str | None, text: str | None, data: str | None = None) -> str | None:
    """What the customer did, or ``None`` for an ordinary message.

    ``kind``: the message's kind (``callback``, ``command``, ``text``...; ``None`` when
    unknown, e.g. in an old snapshot); ``text``: what was stored; ``data``: the tapped
    button's data when known apart from the text (the prompt's recorded choice).
    """
    text = (text or "").strip()
    if kind == "command" or (kind is None and text.startswith("/start")):
        head, _, args = text.partition(" ")
        command = head[1:].split("@", 1)[0].lower()
        if command == "start":
            return "linked their chat" if args.strip() else "started the chat"
        if kind != "command":
            return None
        if command == "human":
            return "asked for a person"
        if command == "help":
            return "asked for help"
        return None
    if kind == "callback" or (kind is None and _DATA.match(text)):
        candidate = data or (text if _DATA.match(text) else "")
        described = _tap(candidate, text) if candidate else None
        if described is not None:
            return described
        if kind == "callback":
            return f"tapped “{text}”" if text else "tapped a button"
    return None


def tapped_data(session: Session, message_ids: Iterable[int]) -> dict[int, str]:
    """Message id -> the data of the button that message tapped (taps that counted only)."""
    ids = [i for i in message_ids if i]
    if not ids:
        return {}
    rows = session.exec(
        select(Prompt.answer_message_id, Prompt.choice)
        .where(col(Prompt.answer_message_id).in_(ids))
        .where(col(Prompt.choice).is_not(None))
    ).all()
    return {int(m): str(c) for m, c in rows if m is not None and c is not None}
