"""Web chat, the read side: what the visitor sees.

Their messages (never a private note or an internal event; the CSAT question the service
sends after a resolve included), with the buttons of the latest reply only, and who has their
chat now (the bot, the queue, or a person) for the widget's header.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from bot.channels.webchat import CHANNEL, PAGE, client_id_of
from handoff.models import (
    Author,
    ChannelIdentity,
    Conversation,
    ConversationMode,
    Direction,
    Handoff,
    HandoffStatus,
    Message,
    OutboxEntry,
    User,
)

# ``system``: what the service itself sends the customer, e.g. the CSAT question after a resolve.
VISIBLE_AUTHORS = (
    Author.customer.value,
    Author.bot.value,
    Author.agent.value,
    Author.system.value,
)
VISIBLE_DIRECTIONS = (Direction.inbound.value, Direction.outbound.value)


class ChatButton(BaseModel):
    text: str
    data: str


class ChatMessagePublic(BaseModel):
    """One message as the widget shows it (never a private note or an internal event)."""

    id: int
    author: str  # customer, bot, agent, system
    author_name: str | None = None  # an agent's first name
    text: str
    created_at: str
    client_id: str | None = None  # the widget's id of a customer message
    buttons: list[ChatButton] = []


def visitor_messages(
    session: Session, visitor_id: str, *, after: int = 0, limit: int = PAGE
) -> list[ChatMessagePublic]:
    """The visitor's messages with ``id > after``, oldest first (the latest ``limit`` when
    ``after`` is 0). Only the conversation's latest bot/agent message carries buttons."""
    identity_id = session.exec(
        select(ChannelIdentity.id)
        .where(ChannelIdentity.channel == CHANNEL)
        .where(ChannelIdentity.external_id == visitor_id)
    ).first()
    if identity_id is None:
        return []
    conversations = select(Conversation.id).where(Conversation.identity_id == identity_id)
    visible = (
        select(Message)
        .where(col(Message.conversation_id).in_(conversations))
        .where(col(Message.direction).in_(VISIBLE_DIRECTIONS))
        .where(col(Message.author).in_(VISIBLE_AUTHORS))
        .where(Message.kind != "note")
    )
    if after > 0:
        rows = list(
            session.exec(
                visible.where(col(Message.id) > after).order_by(col(Message.id)).limit(limit)
            )
        )
    else:
        rows = list(
            reversed(session.exec(visible.order_by(col(Message.id).desc()).limit(limit)).all())
        )
    if not rows:
        return []
    latest_outbound = session.exec(
        select(func.max(Message.id))
        .where(col(Message.conversation_id).in_(conversations))
        .where(Message.direction == Direction.outbound.value)
    ).one()
    buttons = _buttons_of(session, latest_outbound) if latest_outbound else []
    user_ids = {m.author_user_id for m in rows if m.author_user_id is not None}
    names = (
        {
            user.id: user.name.split()[0] if user.name.strip() else None
            for user in session.exec(select(User).where(col(User.id).in_(user_ids)))
        }
        if user_ids
        else {}
    )
    return [
        ChatMessagePublic(
            id=m.id or 0,
            author=m.author,
            author_name=names.get(m.author_user_id) if m.author == Author.agent.value else None,
            text=m.text,
            created_at=m.created_at.isoformat(),
            client_id=client_id_of(m.external_id)
            if m.direction == Direction.inbound.value
            else None,
            buttons=buttons if m.id == latest_outbound else [],
        )
        for m in rows
    ]


def _buttons_of(session: Session, message_id: int) -> list[ChatButton]:
    entries = session.exec(
        select(OutboxEntry)
        .where(OutboxEntry.message_id == message_id)
        .order_by(col(OutboxEntry.id))
    )
    return [
        ChatButton(text=str(b["text"]), data=str(b["data"]))
        for entry in entries
        for b in entry.payload.get("buttons", [])
        if isinstance(b, dict) and "text" in b and "data" in b
    ]


# -- who the visitor is talking to (the widget's header) ------------------------------------

STATE_BOT = "bot"
STATE_WAITING = "waiting"  # handed over, nobody has taken it yet
STATE_WITH_PERSON = "with_person"  # an agent owns the conversation
STATUS_TEXTS = {
    STATE_BOT: "Ask anything; a person takes over when needed",
    STATE_WAITING: "Passed to our team: a person will answer here",
    STATE_WITH_PERSON: "A person from support is with you",
}


def visitor_state(session: Session, visitor_id: str) -> str:
    """Who has the visitor's latest conversation: the bot, the queue, or a person."""
    conversation = session.exec(
        select(Conversation)
        .join(ChannelIdentity, col(ChannelIdentity.id) == col(Conversation.identity_id))
        .where(ChannelIdentity.channel == CHANNEL)
        .where(ChannelIdentity.external_id == visitor_id)
        .order_by(col(Conversation.id).desc())
        .limit(1)
    ).first()
    if conversation is None or conversation.mode != ConversationMode.human.value:
        return STATE_BOT
    handoff = (
        session.get(Handoff, conversation.active_handoff_id)
        if conversation.active_handoff_id
        else None
    )
    if handoff is not None and handoff.status == HandoffStatus.assigned.value:
        return STATE_WITH_PERSON
    return STATE_WAITING
