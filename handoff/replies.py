"""Queueing a message to a customer: stored as an outbound message, sent via the outbox.

Long texts are split here, at enqueue time, into ordered parts of at most ``limit``
characters, one outbox entry each, so a crash between parts resends nothing already sent.
A message with buttons is recorded as a prompt (``handoff/prompts.py``): only its buttons'
data count as answers, once.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handoff import outbox, prompts
from handoff.models import ChannelIdentity, Conversation, Direction, Message

DEFAULT_TEXT_LIMITS = {"telegram": 4096, "whatsapp": 4096, "webchat": 10_000}


def split_text(text: str, limit: int) -> list[str]:
    """Split a long text into ordered parts of at most ``limit`` characters.

    Prefers paragraph, then line, then word boundaries; only whitespace at the cuts is dropped.
    """
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return [p for p in parts if p]


def queue_reply(
    session: Session,
    conversation: Conversation,
    text: str,
    *,
    author: str,
    buttons: list[dict[str, str]] | None = None,
    intent: str | None = None,
    author_user_id: int | None = None,
    text_limits: dict[str, int] | None = None,
    prompt_kind: str | None = None,
    prompt_details: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
) -> Message:
    """Store an outbound message and queue its parts for delivery on the conversation's channel.

    ``buttons`` are ``{"text": ..., "data": ...}`` dicts, attached to the last part; channels
    without buttons fall back to text. They are recorded as a prompt of ``prompt_kind`` (by
    default the first button's prefix, e.g. ``csat``) with ``prompt_details``.
    ``template`` (WhatsApp: ``{"name", "language", "parameters"}``) sends the message as that
    approved template, in one part; ``text`` is what the customer sees (for the transcript).
    """
    identity = session.get(ChannelIdentity, conversation.identity_id)
    if identity is None:
        raise ValueError(f"conversation {conversation.id} has no channel identity")
    message = Message(
        conversation_id=conversation.id or 0,
        channel=conversation.channel,
        direction=Direction.outbound.value,
        author=author,
        author_user_id=author_user_id,
        text=text,
        intent=intent,
        kind="template" if template else "text",
        raw={"template": template} if template else None,
    )
    session.add(message)
    session.flush()
    limit = (text_limits or DEFAULT_TEXT_LIMITS).get(conversation.channel, 4096)
    parts = [text] if template else split_text(text, limit)
    for index, part in enumerate(parts):
        payload: dict[str, Any] = {"text": part}
        if template:
            payload["template"] = template
        if buttons and index == len(parts) - 1:
            payload["buttons"] = buttons
        outbox.enqueue(
            session,
            kind="customer_message",
            channel=conversation.channel,
            target=identity.external_id,
            payload=payload,
            ordering_key=f"{conversation.channel}:{identity.external_id}",
            message_id=message.id,
        )
    if buttons:
        prompts.offer(
            session,
            conversation.id or 0,
            message.id or 0,
            [b["data"] for b in buttons],
            kind=prompt_kind,
            details=prompt_details,
        )
    return message
