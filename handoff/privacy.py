"""Privacy: erase one person everywhere, and retention of old conversation content.

Erasure removes what identifies the person or what they wrote — message texts and raw
payloads, channel addresses, name, email, link token, their words inside handoff snapshots,
CSM alerts, queued outbox payloads and dead-lettered payloads — while keeping the rows that
carry no personal data, so aggregate figures (message and handoff counts, intents, CSAT
scores, resolution times) stay true. Redelivery of an erased message is still recognised as a
duplicate (its delivery id is kept), so erased text cannot come back through a webhook retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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

    def format(self) -> str:
        return (
            f"erased contact {self.contact_id}: {self.messages} messages, "
            f"{self.identities} channel identities, {self.handoffs} handoff snapshots, "
            f"{self.alerts} alerts, {self.outbox} outbox entries, "
            f"{self.dead_letters} dead-lettered payloads, "
            f"{self.snapshots_elsewhere} mentions in other snapshots"
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
    for channel, address in addresses:
        for entry in session.exec(
            select(OutboxEntry)
            .where(OutboxEntry.channel == channel)
            .where(OutboxEntry.target == address)
        ).all():
            entry.payload = {"text": ERASED}
            entry.target = ERASED
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
    for identity in identities:
        identity.external_id = f"erased:{identity.id}"
        identity.display_name = None
        session.add(identity)
        report.identities += 1
    contact.name = None
    contact.email = None
    contact.link_token = None
    contact.unreachable = True
    session.add(contact)
    session.flush()
    return report


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
