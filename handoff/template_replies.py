"""Replying on WhatsApp with an approved message template (outside the 24-hour window).

A template reply is an agent's reply like any other: it claims a waiting handoff, counts as
the first response, is stored as an outbound message (``kind="template"``, its text the
filled-in preview) and leaves through the outbox, so receipts and failures are tracked and
flagged the same way. Only the template's name, language and parameters travel to Meta: the
customer sees the body Meta approved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from handoff import desk, queue, replies
from handoff.access import Principal
from handoff.errors import InvalidInput
from handoff.message_templates import TemplateCatalog, fill, window_closes_at
from handoff.models import Author, Conversation, Direction, Message, utcnow

logger = logging.getLogger(__name__)

WHATSAPP = "whatsapp"


@dataclass(frozen=True)
class Window:
    """WhatsApp's customer-service window of a conversation."""

    closes_at: datetime | None  # None: the customer never wrote

    def open(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and (now or utcnow()) < self.closes_at

    def seconds_left(self, now: datetime | None = None) -> float:
        if self.closes_at is None:
            return 0.0
        return max(0.0, (self.closes_at - (now or utcnow())).total_seconds())


def window(session: Session, conversation: Conversation) -> Window:
    """The window opened by the customer's last message on this conversation."""
    last = session.exec(
        select(Message.created_at)
        .where(Message.conversation_id == conversation.id)
        .where(Message.direction == Direction.inbound.value)
        .order_by(col(Message.id).desc())
        .limit(1)
    ).first()
    return Window(window_closes_at(last))


def send_template(
    session: Session,
    principal: Principal,
    handoff_id: int,
    catalog: TemplateCatalog,
    *,
    name: str,
    language: str,
    parameters: list[str],
) -> Message:
    """Queue an approved template with its parameters on a WhatsApp handoff.

    ``InvalidInput`` (nothing written) names the field: an unknown template, the wrong
    number of parameters, an empty or too long one, a conversation not on WhatsApp.
    """
    template = catalog.find(name, language)
    values, text = fill(template, parameters)
    handoff, conversation = desk.reply_target(session, principal, handoff_id)
    if conversation.channel != WHATSAPP:
        raise InvalidInput(
            f"template: message templates are for WhatsApp; this conversation is on "
            f"{conversation.channel}"
        )
    message = replies.queue_reply(
        session,
        conversation,
        text,
        author=Author.agent.value,
        author_user_id=principal.user_id,
        template={"name": template.name, "language": template.language, "parameters": values},
    )
    queue.mark_first_response(session, handoff)
    logger.info(
        "agent %s sent template %s on handoff %s", principal.user_id, template.name, handoff_id
    )
    return message
