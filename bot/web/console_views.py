"""What the console shows: queue rows, transcript lines and the CS context card as plain dicts.

Both the server-rendered templates and the JSON polled by the pages' scripts use these, so a
row looks the same before and after a live update. Values are plain text; escaping is the
template's (autoescape) or the browser's (``textContent``) job.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from bot.web import charts
from handoff import activity, desk
from handoff.health import HealthTrend
from handoff.hours import BusinessHours, business_seconds_between, is_open
from handoff.models import Account, Author, Direction, HandoffStatus, Message, User

REASONS: dict[str, str] = {
    "vip_account": "VIP",
    "strategic_intent": "strategic",
    "unknown_topic": "unfamiliar topic",
    "ambiguous": "ambiguous question",
    "low_confidence": "low confidence",
    "at_risk_account": "at risk",
    "renewal_window": "renewal window",
    "repeated_contact": "repeated",
    "requested_human": "requested human",
    "negative_sentiment": "negative",
}
STATUSES: dict[str, str] = {
    HandoffStatus.waiting.value: "waiting",
    HandoffStatus.assigned.value: "assigned",
    HandoffStatus.resolved.value: "resolved",
    HandoffStatus.returned_to_bot.value: "back with bot",
}
CHANNELS: dict[str, str] = {"telegram": "Telegram", "whatsapp": "WhatsApp", "webchat": "Web chat"}
PREVIEW_CHARS = 140


def duration(seconds: float) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``3 h 05``, ``2 d 4 h``."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def days_from_today(day: date | None, today: date | None = None) -> str:
    """``today``, ``in 6 days``, ``3 days ago`` (empty when there is no date)."""
    if day is None:
        return ""
    delta = (day - (today or datetime.now(UTC).date())).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    return f"in {delta} days" if delta > 0 else f"{-delta} days ago"


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sla(handoff: Any, now: datetime, hours: BusinessHours | None = None) -> dict[str, Any]:
    """The first-response SLA of a handoff: text, and whether it is overdue.

    On a priority whose clock runs in business ``hours`` the time left (or overdue) is
    business time, and out of hours the countdown says it is paused.
    """
    if handoff.first_response_at is not None:
        return {"text": "answered", "overdue": False, "state": "met"}
    if handoff.sla_due_at is None or handoff.status not in ("waiting", "assigned"):
        return {"text": "", "overdue": False, "state": "none"}
    calendar = hours or BusinessHours()
    in_hours = calendar.clock(handoff.priority) == "business_hours"
    if in_hours:
        left = business_seconds_between(now, handoff.sla_due_at, calendar)
    else:
        left = (handoff.sla_due_at - now).total_seconds()
    if now >= handoff.sla_due_at:
        return {"text": f"overdue {duration(max(-left, 0))}", "overdue": True, "state": "overdue"}
    paused = " (paused: out of hours)" if in_hours and not is_open(now, calendar) else ""
    return {"text": f"{duration(left)} left{paused}", "overdue": False, "state": "running"}


def queue_row(
    view: desk.HandoffView, me: int, now: datetime, hours: BusinessHours | None = None
) -> dict[str, Any]:
    """One row of the queue table."""
    h = view.handoff
    reasons = [{"code": r, "label": REASONS.get(r, r.replace("_", " "))} for r in h.reasons or []]
    return {
        "id": h.id,
        "url": f"/console/handoffs/{h.id}",
        "priority": h.priority,
        "priority_label": f"P{h.priority}",
        "reasons": reasons,
        "customer": view.contact_name or "Unknown customer",
        "account": view.account_name or "",
        "tier": view.account_tier or "",
        "channel": CHANNELS.get(view.channel, view.channel),
        "last_text": preview(view.last_customer_text),
        "status": h.status,
        "status_label": STATUSES.get(h.status, h.status),
        "waiting": duration((now - h.waiting_since).total_seconds()),
        "sla": sla(h, now, hours),
        "assignee": view.assignee_name or "",
        "assignment_reason": h.assignment_reason or "" if h.assignee_id else "",
        "mine": h.assignee_id == me,
        "intent": (h.intent or "").replace("_", " "),
    }


def message_line(
    message: Message,
    names: dict[int, str],
    failures: dict[int, str] | None = None,
    taps: dict[int, str] | None = None,
) -> dict[str, Any]:
    """One line of the transcript, with who wrote it, how it should look and, for a reply
    that never reached the customer, why (``failures``: message id -> reason). A customer's
    button tap or command reads as what they did (``taps``: message id -> tapped data)."""
    if message.direction == Direction.internal.value:
        kind, who = "note", names.get(message.author_user_id or 0, "Staff") + " · private note"
    elif message.direction == Direction.inbound.value:
        kind, who = "customer", "Customer"
    elif message.author == Author.agent.value:
        kind, who = "agent", names.get(message.author_user_id or 0, "Agent")
    elif message.author == Author.system.value:
        kind, who = "system", "System"
    else:
        kind, who = "bot", "Bot"
    text = message.text or (f"[{message.kind}]" if message.kind != "text" else "")
    did = None
    if kind == "customer":
        did = activity.describe(message.kind, message.text, (taps or {}).get(message.id or 0))
    return {
        "id": message.id,
        "kind": "action" if did else kind,
        "did": did or "",
        "who": who,
        "text": did or text,
        "at": message.created_at.isoformat(),
        "at_label": message.created_at.strftime("%d %b %H:%M UTC"),
        "failed": (failures or {}).get(message.id or 0, ""),
        "intent": (message.intent or "").replace("_", " ")
        if kind == "customer" and not did
        else "",
        "confidence": (
            f"{message.confidence:.2f}"
            if kind == "customer" and message.confidence is not None
            else ""
        ),
        # the policy's strategic term the customer named (why it reached a person)
        "term": str((message.raw or {}).get("strategic_term") or "") if kind == "customer" else "",
    }


def _money(value: Any) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):,.0f}"
    except (TypeError, ValueError):
        return str(value)


def trend_view(trend: HealthTrend | None) -> dict[str, Any]:
    """A health trend as words, a direction (for the colour) and sparkline geometry."""
    if trend is None or trend.delta is None:
        return {"words": "", "direction": "", "spark": None, "days": 0}
    delta = trend.delta
    direction = "down" if delta <= -5 else "up" if delta >= 5 else "flat"
    return {
        "words": trend.words(),
        "direction": direction,
        "spark": charts.sparkline([score for _day, score in trend.points]),
        "days": trend.days,
    }


def context_card(
    detail: desk.HandoffDetail,
    recent: list[dict[str, Any]] | None,
    today: date,
    trend: HealthTrend | None = None,
) -> dict[str, Any]:
    """The CS context: live account values where we have them, the escalation snapshot else."""
    snap: dict[str, Any] = (detail.handoff.context or {}).get("account") or {}
    account: Account | None = detail.account
    live = account is not None

    def pick(field: str) -> Any:
        if live:
            return getattr(account, field)
        return snap.get(field)

    if live and account is not None:
        factors = list((account.attributes or {}).get("health_factors", []) or [])
    else:
        factors = list(snap.get("health_factors") or [])
    csm: User | None = detail.csm
    if csm is not None:
        csm_info: dict[str, Any] | None = {"name": csm.name, "email": csm.email}
    else:
        csm_info = None if live else (snap.get("csm") or None)
    renewal, qbr = _date(pick("renewal_date")), _date(pick("next_qbr_date"))
    status = pick("health_status") or ""
    if not (live or snap):
        return {"known": False, "recent": recent or []}
    return {
        "known": True,
        "source": "live" if live else "snapshot at escalation",
        "name": pick("name") or "",
        "plan": pick("plan") or "",
        "tier": pick("tier") or "",
        "arr": _money(pick("arr")),
        "health_score": pick("health_score"),
        "health_status": status if status in ("green", "yellow", "red") else "",
        "health_factors": [str(f) for f in factors][:8],
        "health_trend": trend_view(trend if live else None),
        "renewal_date": renewal.isoformat() if renewal else "",
        "renewal_in": days_from_today(renewal, today),
        "qbr_date": qbr.isoformat() if qbr else "",
        "qbr_in": days_from_today(qbr, today),
        "expansion_stage": (pick("expansion_stage") or "").replace("_", " "),
        "csm": csm_info,
        "recent": recent or [],
    }


def recent_line(item: dict[str, Any]) -> dict[str, Any]:
    """One of "recent contacts"; a tap or a command reads as what the customer did (older
    snapshots, without ``did``, are read from the stored text)."""
    at = item.get("at") or ""
    did = item.get("did") if "did" in item else activity.describe(None, item.get("text"))
    return {
        "at": at,
        "at_label": at[:10],
        "contact": item.get("contact") or "",
        "intent": "" if did else (item.get("intent") or "").replace("_", " "),
        "text": preview(did or item.get("text"), 90),
        "did": bool(did),
    }


def contact_match(match: desk.ContactMatch, current_contact_id: int | None) -> dict[str, Any]:
    """A contact found by the "link to contact" search on the conversation page."""
    c = match.contact
    return {
        "id": c.id,
        "name": c.name or "",
        "email": c.email or "",
        "account": match.account_name or "no account",
        "current": c.id == current_contact_id,
    }


def account_row(
    account: Account,
    open_count: int,
    csm_name: str,
    today: date,
    trend: HealthTrend | None = None,
) -> dict[str, Any]:
    renewal, qbr = account.renewal_date, account.next_qbr_date
    return {
        "name": account.name,
        "external_id": account.external_id,
        "plan": account.plan or "",
        "tier": account.tier or "",
        "arr": _money(account.arr),
        "health_score": account.health_score,
        "health_status": account.health_status or "",
        "health_factors": list((account.attributes or {}).get("health_factors", []) or [])[:3],
        "health_trend": trend_view(trend),
        "renewal_date": renewal.isoformat() if renewal else "",
        "renewal_in": days_from_today(renewal, today),
        "qbr_date": qbr.isoformat() if qbr else "",
        "qbr_in": days_from_today(qbr, today),
        "expansion_stage": (account.expansion_stage or "").replace("_", " "),
        "csm": csm_name,
        "open_handoffs": open_count,
    }
