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
from handoff import alerts, context, escalation, queue, replies
from handoff.models import Account, Author, Contact, Conversation, Handoff, HandoffStatus, utcnow


class HandoverConfig(Protocol):
    """The part of the triage configuration a handover needs (``TriageConfig`` has it all)."""

    policy: escalation.PolicyConfig
    reopen_window: timedelta
    console_url: str
    slack_webhook_url: str | None
    text_limits: dict[str, int]


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
) -> Handoff:
    """Queue the conversation for a person with the decision's reasons and priority.

    A handoff resolved within ``cfg.reopen_window`` is reopened rather than a new one opened.
    The customer is told a person will reply and how soon (the first-response SLA of the
    priority it got, the target the queue holds the team to); the account's CSM is alerted
    when it is a VIP or at-risk account (``customer_text`` is quoted in the alert).
    """
    reasons = [r.value for r in decision.reasons]
    priority = decision.priority or 3
    sla = escalation.sla_minutes(cfg.policy, priority)
    snapshot = context.snapshot(session, customer.account, customer.contact)
    handoff = _reopenable(session, customer.conversation, cfg.reopen_window)
    if handoff is not None:
        handoff = queue.transition(
            session,
            handoff,
            "reopen",
            queue.CUSTOMER,
            reason=",".join(reasons),
            sla_minutes=sla,
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
        )
    alerts.escalation_alert(
        session,
        handoff,
        customer.account,
        customer_text,
        console_url=cfg.console_url,
        slack_webhook_url=cfg.slack_webhook_url,
    )
    eta = f" (usually within {escalation.describe_wait(sla)})"
    replies.queue_reply(
        session,
        customer.conversation,
        HANDOFF_TEXT.format(eta=eta),
        author=Author.bot.value,
        text_limits=cfg.text_limits,
    )
    return handoff


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
