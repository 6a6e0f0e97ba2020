"""The Customer Success context of an account: what a person sees beside the conversation."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from handoff import activity
from handoff.escalation import AccountFacts
from handoff.models import (
    Account,
    Contact,
    Conversation,
    Direction,
    Handoff,
    Message,
    User,
)


def account_facts(account: Account | None) -> AccountFacts | None:
    """The policy's view of an account."""
    if account is None:
        return None
    return AccountFacts(
        tier=account.tier,
        arr=account.arr,
        renewal_date=account.renewal_date,
        next_qbr_date=account.next_qbr_date,
        expansion_stage=account.expansion_stage,
        health_status=account.health_status,
        health_score=account.health_score,
    )


def account_of(session: Session, contact: Contact) -> Account | None:
    """The account a contact belongs to, if linked."""
    return session.get(Account, contact.account_id) if contact.account_id else None


def snapshot(
    session: Session, account: Account | None, contact: Contact, *, recent: int = 5
) -> dict[str, Any]:
    """A JSON-ready snapshot of the CS context, frozen into a handoff at escalation time."""
    data: dict[str, Any] = {
        "contact": {"id": contact.id, "name": contact.name, "email": contact.email},
        "account": None,
        "recent_contacts": recent_contacts(session, contact, account, limit=recent),
    }
    if account is None:
        return data
    csm = session.get(User, account.csm_id) if account.csm_id else None
    data["account"] = {
        "id": account.id,
        "external_id": account.external_id,
        "name": account.name,
        "plan": account.plan,
        "tier": account.tier,
        "arr": account.arr,
        "health_score": account.health_score,
        "health_status": account.health_status,
        "health_factors": list((account.attributes or {}).get("health_factors", [])),
        "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "next_qbr_date": account.next_qbr_date.isoformat() if account.next_qbr_date else None,
        "expansion_stage": account.expansion_stage,
        "csm": {"id": csm.id, "name": csm.name, "email": csm.email} if csm else None,
    }
    return data


def recent_contacts(
    session: Session, contact: Contact, account: Account | None, *, limit: int = 5
) -> list[dict[str, Any]]:
    """The last inbound messages of the account (or the contact), with their intents."""
    stmt = (
        select(Message, Contact.name, Contact.id)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(Message.direction == Direction.inbound.value)
    )
    if account is not None:
        stmt = stmt.where(Contact.account_id == account.id)
    else:
        stmt = stmt.where(Contact.id == contact.id)
    rows = session.exec(stmt.order_by(col(Message.id).desc()).limit(limit)).all()
    taps = activity.tapped_data(session, [m.id or 0 for m, _, _ in rows if m.kind == "callback"])
    return [
        {
            "at": message.created_at.isoformat(),
            "contact": name,
            "contact_id": contact_id,
            "intent": message.intent,
            "text": message.text[:200],
            # what the customer did, for a button tap or a command (None for a message)
            "did": activity.describe(message.kind, message.text, taps.get(message.id or 0)),
        }
        for message, name, contact_id in rows
    ]


def open_handoff_count(session: Session, account_id: int) -> int:
    """How many handoffs of the account are open right now."""
    stmt = (
        select(Handoff)
        .where(Handoff.account_id == account_id)
        .where(col(Handoff.status).in_(["waiting", "assigned"]))
    )
    return len(session.exec(stmt).all())
