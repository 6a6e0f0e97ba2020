"""Privacy: erase one person everywhere, and retention of old conversation content.

Erasure removes what identifies the person or what they wrote — message texts and raw
payloads, channel addresses (outbox ordering keys too), name, email, link token, their words
inside handoff snapshots, CSM alerts, queued outbox payloads and dead-lettered payloads, their
NPS answers' email, id and comment, and the contact a chat profile created for an identity
that was later linked to them — while keeping the rows that
carry no personal data, so aggregate figures (message and handoff counts, intents, CSAT
scores, resolution times) stay true. Redelivery of an erased message is still recognised as a
duplicate (its delivery id is kept), so erased text cannot come back through a webhook retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from handoff.errors import NotFound
from handoff.models import (
    ChannelIdentity,
    Contact,
    Conversation,
    CsAlert,
    Handoff,
    InboundEvent,
    Message,
    NpsResponse,
    OutboxEntry,
    utcnow,
)

ERASED = "[erased]"


@dataclass
class ErasureReport:
    contact_id: int
    messages: int = 0
    identities: int = 0
    handoffs: int = 0
    alerts: int = 0
    outbox: int = 0
    dead_letters: int = 0
    snapshots_elsewhere: int = 0
    nps: int = 0
    profiles: int = 0

    def format(self) -> str:
        return (
            f"erased contact {self.contact_id}: {self.messages} messages, "
            f"{self.identities} channel identities, {self.handoffs} handoff snapshots, "
            f"{self.alerts} alerts, {self.outbox} outbox entries, "
            f"{self.dead_letters} dead-lettered payloads, "
            f"{self.snapshots_elsewhere} mentions in other snapshots, "
            f"{self.nps} NPS answers, {self.profiles} contacts made from chat profiles"
        )


def _scrub_recent(context: dict[str, Any], contact_id: int, texts: set[str]) -> bool:
    recent = context.get("recent_contacts") or []
    kept = [
        r
        for r in recent
        if r.get("contact_id") != contact_id and (r.get("text") or "") not in texts
    ]
    if len(kept) == len(recent):
        return False
    context["recent_contacts"] = kept
    return True


def erase_contact(session: Session, contact_id: int) -> ErasureReport:
    """Erase a contact's personal data everywhere (caller commits)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    report = ErasureReport(contact_id=contact_id)
    conversations = session.exec(
        select(Conversation).where(Conversation.contact_id == contact_id)
    ).all()
    conversation_ids = [c.id for c in conversations]
    identities = session.exec(
        select(ChannelIdentity).where(ChannelIdentity.contact_id == contact_id)
    ).all()
    addresses = {(i.channel, i.external_id) for i in identities}
    texts: set[str] = set()
    alert_ids: set[int] = set()
    if conversation_ids:
        for message in session.exec(
            select(Message).where(col(Message.conversation_id).in_(conversation_ids))
        ).all():
            if message.text:
                texts.add(message.text[:200])
            message.text = ""
            message.raw = None
            message.kind = "erased" if message.kind != "note" else "note"
            session.add(message)
            report.messages += 1
        for handoff in session.exec(
            select(Handoff).where(col(Handoff.conversation_id).in_(conversation_ids))
        ).all():
            handoff.context = {"contact": {"id": contact_id, "erased": True}, "erased": True}
            session.add(handoff)
            report.handoffs += 1
            for alert in session.exec(select(CsAlert).where(CsAlert.handoff_id == handoff.id)):
                alert.body = ERASED
                alert.details = {k: v for k, v in alert.details.items() if k != "text"}
                session.add(alert)
                alert_ids.add(alert.id or 0)
                report.alerts += 1
    # staff alerts quoting the person (queued or sent to a CSM)
    if alert_ids:
        for entry in session.exec(select(OutboxEntry).where(OutboxEntry.kind == "csm_alert")):
            if (entry.payload or {}).get("alert_id") in alert_ids:
                entry.payload = {"text": ERASED}
                if entry.status == "pending":
                    entry.status = "dead"
                    entry.last_error = "alert about an erased contact"
                session.add(entry)
                report.outbox += 1
    # this person's words quoted in other handoffs' snapshots (recent contacts of the account)
    if contact.account_id is not None:
        for handoff in session.exec(
            select(Handoff).where(Handoff.account_id == contact.account_id)
        ).all():
            context = dict(handoff.context or {})
            if _scrub_recent(context, contact_id, texts):
                handoff.context = context
                session.add(handoff)
                report.snapshots_elsewhere += 1
    by_address = {(i.channel, i.external_id): i.id or 0 for i in identities}
    for channel, address in addresses:
        # the ordering key (``telegram:<chat id>``, ``whatsapp:<phone>``) names the address too
        for entry in session.exec(
            select(OutboxEntry)
            .where(OutboxEntry.channel == channel)
            .where(
                or_(
                    col(OutboxEntry.target) == address,
                    col(OutboxEntry.ordering_key) == f"{channel}:{address}",
                )
            )
        ).all():
            entry.payload = {"text": ERASED}
            entry.target = ERASED
            entry.ordering_key = f"{channel}:erased:{by_address[(channel, address)]}"
            if entry.status == "pending":
                entry.status = "dead"
                entry.last_error = "recipient erased"
            session.add(entry)
            report.outbox += 1
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(address)}(?![0-9A-Za-z])")
        for event in session.exec(select(InboundEvent).where(InboundEvent.channel == channel)):
            if pattern.search(event.body or ""):
                event.body = ERASED
                session.add(event)
                report.dead_letters += 1
    profile_names = {i.display_name for i in identities if i.display_name}
    for identity in identities:
        identity.external_id = f"erased:{identity.id}"
        identity.display_name = None
        session.add(identity)
        report.identities += 1
    report.nps += _erase_nps(session, contact.email)
    report.profiles += _erase_profile_contacts(session, contact_id, profile_names)
    contact.name = None
    contact.email = None
    contact.link_token = None
    contact.unreachable = True
    session.add(contact)
    session.flush()
    return report


def _erase_nps(session: Session, email: str | None) -> int:
    """NPS answers given by this person: their email, the id built from it, their comment."""
    if not email:
        return 0
    rows = session.exec(
        select(NpsResponse).where(
            or_(
                func.lower(NpsResponse.contact_email) == email.lower(),
                col(NpsResponse.external_id).contains(email, autoescape=True),
            )
        )
    ).all()
    for row in rows:  # the score and date stay: they are the account's, not the person's
        row.contact_email = None
        row.comment = None
        row.external_id = f"erased:{row.id}"
        session.add(row)
    return len(rows)


def _erase_profile_contacts(session: Session, contact_id: int, names: set[str]) -> int:
    """Contacts created from a chat profile (a WhatsApp or Telegram name) for an identity that
    was later linked to this person: left without identity or conversation, they still hold
    the profile name. Their name goes too."""
    if not names:
        return 0
    has_identity = select(ChannelIdentity.contact_id)
    has_conversation = select(Conversation.contact_id)
    orphans = session.exec(
        select(Contact)
        .where(Contact.id != contact_id)
        .where(col(Contact.name).in_(names))
        .where(col(Contact.email).is_(None))
        .where(col(Contact.account_id).is_(None))
        .where(col(Contact.id).not_in(has_identity))
        .where(col(Contact.id).not_in(has_conversation))
    ).all()
    for orphan in orphans:
        orphan.name = None
        orphan.link_token = None
        orphan.unreachable = True
        session.add(orphan)
    return len(orphans)


@dataclass
class RetentionReport:
    messages: int = 0
    dead_letters: int = 0
    outbox: int = 0


def apply_retention(session: Session, days: int, now: datetime | None = None) -> RetentionReport:
    """Redact message texts and raw payloads older than ``days`` (caller commits)."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    report = RetentionReport()
    for message in session.exec(
        select(Message).where(Message.created_at < cutoff).where(Message.text != "")
    ).all():
        message.text = ""
        message.raw = None
        session.add(message)
        report.messages += 1
    for event in session.exec(
        select(InboundEvent)
        .where(InboundEvent.received_at < cutoff)
        .where(InboundEvent.body != ERASED)
    ).all():
        event.body = ERASED
        session.add(event)
        report.dead_letters += 1
    for entry in session.exec(
        select(OutboxEntry)
        .where(OutboxEntry.created_at < cutoff)
        .where(col(OutboxEntry.status).in_(["sent", "dead"]))
    ).all():
        if entry.payload != {"text": ERASED}:
            entry.payload = {"text": ERASED}
            session.add(entry)
            report.outbox += 1
    for handoff in session.exec(select(Handoff).where(Handoff.created_at < cutoff)).all():
        context = dict(handoff.context or {})
        recent = context.get("recent_contacts") or []
        if any(r.get("text") for r in recent):
            context["recent_contacts"] = [{**r, "text": ""} for r in recent]
            handoff.context = context
            session.add(handoff)
    for alert in session.exec(
        select(CsAlert).where(CsAlert.created_at < cutoff).where(CsAlert.body != ERASED)
    ).all():
        alert.body = ERASED
        session.add(alert)
    session.flush()
    return report
