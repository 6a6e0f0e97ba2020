"""Read an account's signals from the database into ``HealthInputs`` (see handoff/health.py)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from handoff.health import HealthConfig, HealthInputs
from handoff.models import (
    Account,
    Contact,
    Conversation,
    Direction,
    Feedback,
    Handoff,
    Message,
    NpsResponse,
    UsageDaily,
)
from handoff.sentiment import NEGATIVE_THRESHOLD


def window_start(today: date, days: int) -> datetime:
    """The first instant of a ``days``-day window ending with ``today`` (UTC)."""
    return datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=UTC)


def message_negativity(message: Message) -> float | None:
    """The sentiment score stored on an inbound message (``raw["sentiment"]``), if any."""
    data = (message.raw or {}).get("sentiment") if isinstance(message.raw, dict) else None
    value = data.get("negativity") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None


def account_messages(
    session: Session, account_id: int, since: datetime, until: datetime | None = None
) -> list[Message]:
    """Inbound customer messages of every contact of the account since ``since`` (and
    before ``until``, when given)."""
    stmt = (
        select(Message)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(Contact.account_id == account_id)
        .where(Message.direction == Direction.inbound.value)
        .where(col(Message.created_at) >= since)
    )
    if until is not None:
        stmt = stmt.where(col(Message.created_at) < until)
    return list(session.exec(stmt).all())


def repeated_intents(messages: list[Message], min_count: int) -> list[tuple[str, int]]:
    """Intents asked at least ``min_count`` times, most frequent first."""
    counts = Counter(m.intent for m in messages if m.intent)
    return [(i, n) for i, n in counts.most_common() if i is not None and n >= min_count]


def _median(values: list[int]) -> float:
    return float(statistics.median(values))


def _usage(session: Session, account_id: int, cfg: HealthConfig, today: date) -> dict[str, Any]:
    """Usage measures over the days that have data: a missing day is unknown, never zero.

    A window (the recent ``days``, the ``baseline_days`` before, the last 7 and 14 days)
    counts only when at least ``min_coverage`` of its days have data; otherwise the measure
    is None and the factor is left out of the score. ``basis`` says what the figures rest on.
    """
    trend = cfg.factors.usage_trend
    first = today - timedelta(days=trend.days + trend.baseline_days - 1)
    rows = session.exec(
        select(UsageDaily)
        .where(UsageDaily.account_id == account_id)
        .where(col(UsageDaily.day) >= min(first, today - timedelta(days=13)))
        .where(col(UsageDaily.day) <= today)
        .order_by(col(UsageDaily.day))
    ).all()
    if not rows:
        last = _last_usage_day(session, account_id, today)
        return {
            "basis": (f"no usage data since {last.isoformat()}" if last else "no usage data yet",)
        }
    split = today - timedelta(days=trend.days - 1)
    recent = [r.active_users for r in rows if r.day >= split]
    prior = [r.active_users for r in rows if first <= r.day < split]
    week = [r.active_users for r in rows if r.day > today - timedelta(days=7)]
    fortnight = [r.logins for r in rows if r.day > today - timedelta(days=14)]
    seats = rows[-1].seats or None
    basis = [
        f"usage data on {len(recent)} of the last {trend.days} days"
        f" and {len(prior)} of the {trend.baseline_days} before"
    ]
    if rows[-1].day < today:
        basis.append(f"latest usage data {rows[-1].day.isoformat()}")
    trend_ok = len(recent) >= trend.needed(trend.days) and len(prior) >= trend.needed(
        trend.baseline_days
    )
    if not trend_ok:
        basis.append(
            f"too little usage data for a trend (needs {trend.needed(trend.days)} of"
            f" {trend.days} and {trend.needed(trend.baseline_days)} of {trend.baseline_days} days)"
        )
    week_ok = len(week) >= trend.needed(7)
    fortnight_ok = len(fortnight) >= trend.needed(14)
    return {
        "active_recent": _median(recent) if trend_ok else None,
        "active_prior": _median(prior) if trend_ok else None,
        "seats": seats,
        "active_last_week": sum(week) / len(week) if week_ok else None,
        "logins_per_seat_week": (
            sum(fortnight) / len(fortnight) * 7 / seats if seats and fortnight_ok else None
        ),
        "basis": tuple(basis),
    }


def _last_usage_day(session: Session, account_id: int, today: date) -> date | None:
    return session.exec(
        select(col(UsageDaily.day))
        .where(UsageDaily.account_id == account_id)
        .where(col(UsageDaily.day) <= today)
        .order_by(col(UsageDaily.day).desc())
    ).first()


def gather(session: Session, account: Account, cfg: HealthConfig, today: date) -> HealthInputs:
    """Everything ``score_health`` needs about ``account`` as of the end of ``today``.

    Nothing after ``today`` counts, so a past day can be scored again as it was then.
    """
    f = cfg.factors
    account_id = account.id or 0
    until = window_start(today + timedelta(days=1), 1)
    usage = _usage(session, account_id, cfg, today)
    nps = session.exec(
        select(NpsResponse.score)
        .where(NpsResponse.account_id == account_id)
        .where(col(NpsResponse.responded_on) >= today - timedelta(days=f.nps.days))
        .where(col(NpsResponse.responded_on) <= today)
    ).all()
    feedback = session.exec(
        select(Feedback)
        .where(Feedback.account_id == account_id)
        .where(col(Feedback.created_at) >= window_start(today, max(f.csat.days, f.didnt_help.days)))
        .where(col(Feedback.created_at) < until)
    ).all()
    csat_since = window_start(today, f.csat.days)
    help_since = window_start(today, f.didnt_help.days)
    widest = max(f.negative_messages.days, f.repeated_problems.days)
    messages = account_messages(session, account_id, window_start(today, widest), until)
    neg_since = window_start(today, f.negative_messages.days)
    rep_since = window_start(today, f.repeated_problems.days)
    escalations = session.exec(
        select(Handoff.id)
        .where(Handoff.account_id == account_id)
        .where(col(Handoff.created_at) >= window_start(today, f.escalations.days))
        .where(col(Handoff.created_at) < until)
    ).all()
    renewal = account.renewal_date
    return HealthInputs(
        active_recent=_float(usage.get("active_recent")),
        active_prior=_float(usage.get("active_prior")),
        trend_days=f.usage_trend.days,
        baseline_days=f.usage_trend.baseline_days,
        seats=_int(usage.get("seats")),
        active_last_week=_float(usage.get("active_last_week")),
        logins_per_seat_week=_float(usage.get("logins_per_seat_week")),
        nps_scores=tuple(int(s) for s in nps),
        csat_scores=tuple(
            fb.score
            for fb in feedback
            if fb.kind == "csat" and fb.score is not None and fb.created_at >= csat_since
        ),
        negative_messages=sum(
            1
            for m in messages
            if m.created_at >= neg_since and (message_negativity(m) or 0) >= NEGATIVE_THRESHOLD
        ),
        escalations=len(escalations),
        repeated_intents=tuple(
            i
            for i, _n in repeated_intents(
                [m for m in messages if m.created_at >= rep_since], f.repeated_problems.min_count
            )
        ),
        didnt_help=sum(
            1 for fb in feedback if fb.kind == "didnt_help" and fb.created_at >= help_since
        ),
        days_to_renewal=(renewal - today).days if renewal else None,
        basis=tuple(usage.get("basis", ())),
    )


def _float(value: float | int | None) -> float | None:
    return float(value) if value is not None else None


def _int(value: float | int | None) -> int | None:
    return int(value) if value is not None else None
