"""Alerts to a Customer Success Manager, delivered through the durable outbox.

An escalation of a VIP or at-risk account notifies the account's own CSM once per handoff, by
Telegram direct message (when the CSM linked a chat) and/or a Slack-compatible incoming
webhook. The alert carries the customer's words, the reason codes, the CS context and a link
to the conversation in the console. Delivery retries with backoff and ends in a visible
``dead`` state; it never blocks the queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from handoff import outbox
from handoff.errors import NotFound, PermissionDenied
from handoff.hours import BusinessHours, next_open
from handoff.models import Account, CsAlert, Handoff, OutboxEntry, Role, User, utcnow

ALERT_REASONS = frozenset({"vip_account", "at_risk_account"})
REASON_LABELS = {
    "requested_human": "asked for a person",
    "strategic_intent": "strategic topic",
    "vip_account": "VIP account",
    "unknown_topic": "unfamiliar topic",
    "ambiguous": "ambiguous question",
    "low_confidence": "bot unsure",
    "negative_sentiment": "negative tone",
    "repeated_contact": "repeated problem",
    "at_risk_account": "account at risk",
    "renewal_window": "in renewal window",
}


def _money(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "?"


def escalation_text(
    handoff: Handoff, account: Account, csm: User, customer_text: str, url: str
) -> str:
    ctx: dict[str, Any] = (handoff.context or {}).get("account") or {}
    reasons = ", ".join(REASON_LABELS.get(r, r) for r in handoff.reasons)
    lines = [
        f"[P{handoff.priority}] {account.name} escalated to support — {reasons}",
        f'Customer wrote: "{customer_text[:500]}"',
        f"Plan {account.plan or '?'} · tier {account.tier or '?'} · ARR {_money(account.arr)}"
        f" · health {ctx.get('health_score', account.health_score) or '?'}"
        f" ({account.health_status or 'unknown'})",
    ]
    if account.renewal_date:
        lines.append(f"Renewal {account.renewal_date.isoformat()}")
    if account.next_qbr_date:
        lines.append(f"Next QBR {account.next_qbr_date.isoformat()}")
    if account.expansion_stage:
        lines.append(f"Expansion: {account.expansion_stage}")
    lines.append(f"Open in the console: {url}")
    return "\n".join(lines)


def escalation_alert(
    session: Session,
    handoff: Handoff,
    account: Account | None,
    customer_text: str,
    *,
    console_url: str,
    slack_webhook_url: str | None = None,
    hours: BusinessHours | None = None,
) -> CsAlert | None:
    """Queue the CSM alert for a VIP/at-risk escalation, once per handoff (None otherwise).

    A P1 alert leaves at once. Any other alert raised out of business hours (``hours``) is
    held: its outbox entries are due at the next opening, on an ordering key of their own
    (``csm:<id>:<channel>:held``) so that they never hold up a P1 alert queued after them.
    The hold is in the outbox itself, so a restart in between changes nothing.
    """
    if account is None or account.csm_id is None or not ALERT_REASONS & set(handoff.reasons):
        return None
    already = session.exec(
        select(CsAlert.id)
        .where(CsAlert.handoff_id == handoff.id)
        .where(CsAlert.kind == "vip_escalation")
    ).first()
    if already is not None:
        return None
    csm = session.get(User, account.csm_id)
    if csm is None or not csm.is_active:
        return None
    url = f"{console_url.rstrip('/')}/handoffs/{handoff.id}"
    text = escalation_text(handoff, account, csm, customer_text, url)
    now = utcnow()
    held_until = None
    if handoff.priority != 1 and hours is not None:
        opens = next_open(now, hours)
        held_until = opens if opens > now else None
    alert = CsAlert(
        account_id=account.id,
        csm_id=csm.id,
        handoff_id=handoff.id,
        kind="vip_escalation",
        title=f"{account.name}: escalation P{handoff.priority}",
        body=text,
        details={"reasons": list(handoff.reasons), "url": url},
    )
    if held_until is not None:
        alert.details["held_until"] = held_until.isoformat()
    session.add(alert)
    session.flush()
    destinations: list[tuple[str, str]] = []
    if csm.telegram_chat_id:
        destinations.append(("telegram", csm.telegram_chat_id))
    slack = csm.slack_webhook_url or slack_webhook_url
    if slack:
        destinations.append(("slack", slack))
    for channel, target in destinations:
        outbox.enqueue(
            session,
            kind="csm_alert",
            channel=channel,
            target=target,
            payload={"text": text, "alert_id": alert.id},
            ordering_key=f"csm:{csm.id}:{channel}" + (":held" if held_until else ""),
            dedupe_key=f"csm_alert:{handoff.id}:{channel}",
            not_before=held_until,
        )
    alert.details = {**alert.details, "channels": [c for c, _ in destinations]}
    session.add(alert)
    return alert


# ------------------------------------------------------------- proactive Customer Success
PROACTIVE_KINDS = frozenset({"turned_red", "usage_drop", "vip_quiet", "digest"})


def csm_destinations(csm: User, slack_webhook_url: str | None = None) -> list[tuple[str, str]]:
    """Where a CSM receives alerts: their Telegram chat and/or Slack webhook (or the default)."""
    destinations: list[tuple[str, str]] = []
    if csm.telegram_chat_id:
        destinations.append(("telegram", csm.telegram_chat_id))
    slack = csm.slack_webhook_url or slack_webhook_url
    if slack:
        destinations.append(("slack", slack))
    return destinations


def in_cooldown(
    session: Session, account_id: int, kind: str, cooldown: timedelta, now: datetime
) -> bool:
    """True when an alert of this kind was raised for the account within ``cooldown``."""
    found = session.exec(
        select(CsAlert.id)
        .where(CsAlert.account_id == account_id)
        .where(CsAlert.kind == kind)
        .where(col(CsAlert.created_at) > now - cooldown)
    ).first()
    return found is not None


def send_to_csm(
    session: Session,
    csm: User,
    *,
    kind: str,
    title: str,
    body: str,
    details: dict[str, Any],
    dedupe: str,
    account_id: int | None = None,
    slack_webhook_url: str | None = None,
) -> CsAlert | None:
    """Record a CsAlert for ``csm`` and queue it to their own channels only (None if a dupe).

    ``dedupe`` names the alert's occurrence (kind, account or CSM, period): the same
    occurrence is never queued twice, even by two instances at once (unique outbox key).
    """
    if kind not in PROACTIVE_KINDS:
        raise ValueError(f"unknown proactive alert kind {kind!r}")
    if outbox_has(session, f"cs:{dedupe}:"):
        return None
    alert = CsAlert(
        account_id=account_id,
        csm_id=csm.id,
        kind=kind,
        title=title[:300],
        body=body,
        details={**details, "dedupe": dedupe},
    )
    session.add(alert)
    session.flush()
    destinations = csm_destinations(csm, slack_webhook_url)
    text = f"{title}\n{body}"
    for channel, target in destinations:
        outbox.enqueue(
            session,
            kind="csm_alert",
            channel=channel,
            target=target,
            payload={"text": text, "alert_id": alert.id},
            ordering_key=f"csm:{csm.id}:{channel}",
            dedupe_key=f"cs:{dedupe}:{channel}"[:200],
        )
    alert.details = {**alert.details, "channels": [c for c, _ in destinations]}
    session.add(alert)
    return alert


def outbox_has(session: Session, dedupe_prefix: str) -> bool:
    """True when an outbox entry's dedupe key starts with ``dedupe_prefix``."""
    found = session.exec(
        select(OutboxEntry.id).where(col(OutboxEntry.dedupe_key).startswith(dedupe_prefix))
    ).first()
    return found is not None


def proactive_alert(
    session: Session,
    account: Account,
    kind: str,
    title: str,
    body: str,
    details: dict[str, Any],
    *,
    period: str,
    cooldown: timedelta,
    now: datetime | None = None,
    slack_webhook_url: str | None = None,
) -> CsAlert | None:
    """Alert the account's CSM (no ticket needed), unless in cooldown for (account, kind)."""
    now = now or utcnow()
    if account.csm_id is None or account.id is None:
        return None
    csm = session.get(User, account.csm_id)
    if csm is None or not csm.is_active:
        return None
    if in_cooldown(session, account.id, kind, cooldown, now):
        return None
    return send_to_csm(
        session,
        csm,
        kind=kind,
        title=title,
        body=body,
        details={**details, "period": period},
        dedupe=f"{kind}:{account.id}:{period}",
        account_id=account.id,
        slack_webhook_url=slack_webhook_url,
    )


def acknowledge_alert(session: Session, principal_user_id: int, alert_id: int) -> CsAlert:
    """Mark an alert as seen; only the CSM it was sent to may (an admin too). Idempotent."""
    alert = session.get(CsAlert, alert_id)
    user = session.get(User, principal_user_id)
    if alert is None or user is None:
        raise NotFound(f"alert {alert_id} not found")
    if alert.csm_id != user.id and user.role != Role.admin.value:
        raise PermissionDenied("only the alert's CSM may acknowledge it")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = user.id
        session.add(alert)
        session.flush()
    return alert


ACKNOWLEDGEABLE_KINDS = ("turned_red", "usage_drop", "vip_quiet")


def open_alerts(session: Session, user_id: int, limit: int = 50) -> list[CsAlert]:
    """Proactive alerts not yet acknowledged: a CSM's own, or everyone's for an admin."""
    user = session.get(User, user_id)
    if user is None:
        return []
    stmt = (
        select(CsAlert)
        .where(col(CsAlert.kind).in_(ACKNOWLEDGEABLE_KINDS))
        .where(col(CsAlert.acknowledged_at).is_(None))
        .order_by(col(CsAlert.created_at).desc())
        .limit(limit)
    )
    if user.role != Role.admin.value:
        stmt = stmt.where(CsAlert.csm_id == user.id)
    return list(session.exec(stmt).all())
