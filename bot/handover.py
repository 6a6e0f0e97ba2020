"""Handing a conversation to a person: open (or reopen) its handoff, alert the CSM, tell the
customer. Used by the pipeline (``bot/triage.py``) and by the sweep of unanswered
clarifications (``bot/clarification.py``), in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlmodel import Session

from bot.answers import HANDOFF_TEXT
from handoff import alerts, assignment, context, escalation, queue, replies
from handoff.hours import BusinessHours, back_at
from handoff.models import Account, Author, Contact, Conversation, Handoff, HandoffStatus, utcnow


class HandoverConfig(Protocol):
    """The part of the triage configuration a handover needs (``TriageConfig`` has it all)."""

    policy: escalation.PolicyConfig
    reopen_window: timedelta
    console_url: str
    slack_webhook_url: str | None
    text_limits: dict[str, int]
    hours: BusinessHours


@dataclass(frozen=True)
class Customer:
    """Who is handed over: the conversation, its contact and their account (if known)."""

    conversation: Conversation
    contact: Contact
    account: Account | None


def hand_over(
    session: Session,
    cfg: HandoverConfig,
    customer: Customer,
    decision: escalation.Decision,
    *,
    intent: str | None,
    customer_text: str,
    trigger_message_id: int | None = None,
) -> Handoff:
    """Queue the conversation for a person with the decision's reasons and priority.

    A handoff resolved within ``cfg.reopen_window`` is reopened rather than a new one opened.
    The customer is told a person will reply and how soon (the first-response SLA of the
    priority it got, the target the queue holds the team to; out of business hours, when
    the team is back: "We're back Monday 9:00 CET"); the account's CSM is alerted when it is
    a VIP or at-risk account (``customer_text`` is quoted in the alert; not P1: held until
    the next business hours). When someone is online the handoff is assigned at once
    (owner first, then the fewest open: ``handoff/assignment.py``).
    ``trigger_message_id``, the customer's message it is handed over for, is kept in the
    handoff's context (unanswered-question mining reads it: ``handoff/suggestions.py``).
    """
    reasons = [r.value for r in decision.reasons]
    priority = decision.priority or 3
    sla = escalation.sla_minutes(cfg.policy, priority)
    snapshot = context.snapshot(session, customer.account, customer.contact)
    if trigger_message_id is not None:
        snapshot = {**snapshot, "trigger_message_id": trigger_message_id}
    handoff = _reopenable(session, customer.conversation, cfg.reopen_window)
    if handoff is not None:
        handoff = queue.transition(
            session,
            handoff,
            "reopen",
            queue.CUSTOMER,
            reason=",".join(reasons),
            sla_minutes=sla,
            hours=cfg.hours,
            sla_priority=min(handoff.priority, priority),
        )
        handoff.priority = min(handoff.priority, priority)
        handoff.reasons = list(dict.fromkeys([*reasons, *handoff.reasons]))
        handoff.context = snapshot
        session.add(handoff)
    else:
        handoff = queue.create_handoff(
            session,
            customer.conversation,
            priority=priority,
            reasons=reasons,
            intent=intent,
            context=snapshot,
            account_id=customer.account.id if customer.account else None,
            sla_minutes=sla,
            hours=cfg.hours,
        )
    assignment.assign_new(session, handoff, cfg.policy.assignment)  # someone online gets it
    alerts.escalation_alert(
        session,
        handoff,
        customer.account,
        customer_text,
        console_url=cfg.console_url,
        slack_webhook_url=cfg.slack_webhook_url,
        hours=cfg.hours,
    )
    eta = _expected_wait(cfg.hours, handoff.priority, sla)
    replies.queue_reply(
        session,
        customer.conversation,
        HANDOFF_TEXT.format(eta=eta),
        author=Author.bot.value,
        text_limits=cfg.text_limits,
    )
    return handoff


def _expected_wait(calendar: BusinessHours, priority: int, sla: int) -> str:
    """The wait the customer is told: the SLA in words, or when the team is back when the
    handoff arrives out of hours and its priority's clock only runs in business hours."""
    now = utcnow()
    back = back_at(now, calendar) if calendar.clock(priority) != "always" else None
    if back is not None:
        return f". We're back {back}"
    return f" (usually within {escalation.describe_wait(sla)})"


def _reopenable(session: Session, conversation: Conversation, window: timedelta) -> Handoff | None:
    handoff_id = conversation.active_handoff_id
    if handoff_id is None:
        return None
    handoff = session.get(Handoff, handoff_id)
    if handoff is None or handoff.status != HandoffStatus.resolved.value:
        return None
    if handoff.resolved_at is None or utcnow() - handoff.resolved_at > window:
        return None
    return handoff
