"""Contacts, their channel identities and their conversations."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from handoff.errors import NotFound
from handoff.models import (
    ChannelIdentity,
    Contact,
    Conversation,
    Direction,
    Message,
    utcnow,
)

logger = logging.getLogger(__name__)

LINK_TOKEN_BYTES = 24  # 32 URL-safe characters: within Telegram's 64 for a start parameter


def resolve_conversation(
    session: Session,
    channel: str,
    external_user_id: str,
    display_name: str | None = None,
) -> tuple[Conversation, ChannelIdentity, Contact]:
    """Find or create the identity, contact and (one, long-lived) conversation of a sender.

    Safe against two first messages of the same sender racing: the unique constraint on
    (channel, external_id) decides, and the loser reads the winner's rows.
    """
    identity = _find_identity(session, channel, external_user_id)
    if identity is None:
        try:
            with session.begin_nested():
                new_contact = Contact(name=display_name)
                session.add(new_contact)
                session.flush()
                identity = ChannelIdentity(
                    contact_id=new_contact.id or 0,
                    channel=channel,
                    external_id=external_user_id,
                    display_name=display_name,
                )
                session.add(identity)
                session.flush()
                session.add(
                    Conversation(
                        contact_id=new_contact.id or 0,
                        identity_id=identity.id or 0,
                        channel=channel,
                    )
                )
                session.flush()
        except IntegrityError:
            identity = _find_identity(session, channel, external_user_id)
            if identity is None:
                raise
    contact = session.get(Contact, identity.contact_id)
    if contact is None:
        raise NotFound(f"identity {identity.id} points to missing contact {identity.contact_id}")
    conversation = session.exec(
        select(Conversation)
        .where(Conversation.identity_id == identity.id)
        .order_by(col(Conversation.id).desc())
    ).first()
    if conversation is None:  # identity linked without a conversation yet
        conversation = Conversation(
            contact_id=contact.id or 0, identity_id=identity.id or 0, channel=channel
        )
        session.add(conversation)
        session.flush()
    return conversation, identity, contact


def _find_identity(session: Session, channel: str, external_id: str) -> ChannelIdentity | None:
    return session.exec(
        select(ChannelIdentity)
        .where(ChannelIdentity.channel == channel)
        .where(ChannelIdentity.external_id == external_id)
    ).first()


def count_recent_intent(
    session: Session,
    contact_id: int,
    intent: str,
    since: datetime,
    exclude_message_id: int,
    *,
    also_exclude: int | None = None,
) -> int:
    """How many earlier inbound messages of this contact had this intent since ``since``
    (not counting ``exclude_message_id``, nor ``also_exclude``)."""
    stmt = (
        select(func.count())
        .select_from(Message)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(Conversation.contact_id == contact_id)
        .where(Message.direction == Direction.inbound.value)
        .where(Message.intent == intent)
        .where(col(Message.created_at) >= since)
        .where(col(Message.id).not_in([exclude_message_id, also_exclude or 0]))
    )
    return int(session.exec(stmt).one())


def count_recent_inbound(session: Session, conversation_id: int, since: datetime) -> int:
    """Inbound messages of a conversation since ``since`` (the current one included)."""
    stmt = (
        select(func.count())
        .select_from(Message)
        .where(Message.conversation_id == conversation_id)
        .where(Message.direction == Direction.inbound.value)
        .where(col(Message.created_at) >= since)
    )
    return int(session.exec(stmt).one())


def touch(conversation: Conversation, identity: ChannelIdentity) -> None:
    """Record that the customer just wrote (for the WhatsApp 24-hour window, ordering)."""
    now = utcnow()
    conversation.last_message_at = now
    identity.last_inbound_at = now


def mark_unreachable(session: Session, channel: str, external_id: str) -> None:
    """Flag the contact behind a channel address as unreachable (blocked the bot, etc.)."""
    identity = _find_identity(session, channel, external_id)
    if identity is None:
        return
    contact = session.get(Contact, identity.contact_id)
    if contact is not None and not contact.unreachable:
        contact.unreachable = True
        session.add(contact)
        logger.info("contact %s marked unreachable on %s", contact.id, channel)


def issue_link_token(session: Session, contact_id: int) -> str:
    """A new single-use link token for a contact (replacing any earlier one).

    The customer opens ``https://t.me/<bot>?start=<token>`` (:func:`telegram_link`) or sends
    ``/start <token>``; the chat is then tied to this contact and the token is spent.
    """
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    contact.link_token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
    session.add(contact)
    session.flush()
    logger.info("link token issued for contact %s", contact_id)
    return contact.link_token


def telegram_link(bot_username: str | None, token: str) -> str | None:
    """The Telegram deep link for a token, when the bot's username is known."""
    name = (bot_username or "").strip().lstrip("@")
    return f"https://t.me/{name}?start={token}" if name else None
