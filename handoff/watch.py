"""Proactive Customer Success alerts: the rules that tell a CSM to act before any ticket.

* ``turned_red``: the health score fell into the red band (it was not red before).
* ``usage_drop``: median daily active users of the recent window fell by
  ``alerts.usage_drop`` (30%) or more against the baseline before it
  (``factors.usage_trend``). One alert per episode: the account's ``health_usage_drop_since``
  attribute marks an open drop, closed once the trend (with enough data) is above the
  threshold again. A window mostly without data has no trend, so it never alerts.
* ``vip_quiet``: a VIP account has reported no logins or active users for
  ``alerts.vip_quiet_days`` days of data (days without data are unknown, not quiet) while its
  renewal is within ``alerts.vip_renewal_within_days``.

Each alert says what data it rests on, goes to the account's own CSM through the outbox
(``alerts.proactive_alert``) and is not repeated for the same (account, kind) inside
``alerts.cooldown_days``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from handoff import alerts
from handoff.context import account_facts
from handoff.escalation import PolicyConfig, Reason, account_flags
from handoff.health import HealthChange, HealthConfig
from handoff.models import Account, CsAlert, UsageDaily, utcnow

logger = logging.getLogger(__name__)


def last_active_day(session: Session, account_id: int) -> date | None:
    """The last day with any login or active user; None without usage data."""
    row = session.exec(
        select(UsageDaily)
        .where(UsageDaily.account_id == account_id)
        .where((col(UsageDaily.logins) > 0) | (col(UsageDaily.active_users) > 0))
        .order_by(col(UsageDaily.day).desc())
    ).first()
    return row.day if row is not None else None


def last_data_day(session: Session, account_id: int) -> date | None:
    """The last day with usage data of any kind; None without usage data."""
    return session.exec(
        select(col(UsageDaily.day))
        .where(UsageDaily.account_id == account_id)
        .order_by(col(UsageDaily.day).desc())
    ).first()


EPISODE_KEY = "health_usage_drop_since"  # "health*" keys survive a CRM sync


def check_account(
    session: Session,
    account: Account,
    change: HealthChange,
    cfg: HealthConfig,
    today: date,
    *,
    policy: PolicyConfig | None = None,
    now: datetime | None = None,
    slack_webhook_url: str | None = None,
) -> list[CsAlert]:
    """Raise the proactive alerts that apply to ``account`` after a health recomputation."""
    now = now or utcnow()
    rules = cfg.alerts
    cooldown = timedelta(days=rules.cooldown_days)
    period = today.isoformat()
    result = change.result
    reasons = result.reasons()
    raised: list[CsAlert] = []

    def alert(kind: str, title: str, body: str, details: dict[str, object]) -> None:
        made = alerts.proactive_alert(
            session,
            account,
            kind,
            title,
            body,
            dict(details),
            period=period,
            cooldown=cooldown,
            now=now,
            slack_webhook_url=slack_webhook_url,
        )
        if made is not None:
            raised.append(made)

    why = "\n".join(f"• {r}" for r in reasons)
    if result.basis:
        why += "\nBased on: " + "; ".join(result.basis) + "."
    if result.status == "red" and change.previous_status != "red":
        alert(
            "turned_red",
            f"{account.name} turned red (health {result.score})",
            f"Health {change.previous_score or '?'} → {result.score}. Why:\n{why}",
            {"score": result.score, "factors": reasons},
        )
    trend = result.factor("usage_trend")
    attrs = dict(account.attributes or {})
    if trend is not None and trend.value is not None:
        dropping = trend.value <= -rules.usage_drop
        if dropping and not attrs.get(EPISODE_KEY):
            alert(
                "usage_drop",
                f"{account.name}: {trend.text}",
                f"Usage is falling ({trend.text}); health {result.score} ({result.status}).\n{why}",
                {"change": round(trend.value, 3), "factors": reasons, "basis": list(result.basis)},
            )
            attrs[EPISODE_KEY] = period
        elif not dropping and attrs.get(EPISODE_KEY):
            attrs.pop(EPISODE_KEY)
        if attrs != (account.attributes or {}):
            account.attributes = attrs
            session.add(account)
    flags = account_flags(policy or PolicyConfig(), account_facts(account), today)
    renewal = account.renewal_date
    if (
        Reason.vip_account in flags
        and renewal is not None
        and 0 <= (renewal - today).days <= rules.vip_renewal_within_days
        and account.id is not None
        and (data_day := last_data_day(session, account.id)) is not None
    ):
        last = last_active_day(session, account.id)
        quiet = (data_day - last).days if last else None
        if quiet is None or quiet >= rules.vip_quiet_days:
            since = f"for {quiet} days" if quiet is not None else "at all recently"
            if data_day < today:
                since += f" (latest usage data {data_day.isoformat()})"
            alert(
                "vip_quiet",
                f"{account.name} (VIP) has gone quiet before renewal",
                f"No logins or active users {since}; renewal on {renewal.isoformat()} "
                f"(in {(renewal - today).days} days).\n{why}",
                {"quiet_days": quiet, "renewal_date": renewal.isoformat()},
            )
    for made in raised:
        logger.info("CS alert %s for account %s", made.kind, account.external_id)
    return raised
