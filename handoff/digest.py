"""Support → Customer Success: recurring problems, "didn't help" clusters, the CSM digest.

The digest of a CSM covers only the accounts they own and is queued only to their own
channels (Telegram / Slack); an account without a CSM is in nobody's digest.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, col, select

from handoff import alerts
from handoff.health import HealthConfig
from handoff.health_inputs import account_messages, repeated_intents, window_start
from handoff.models import Account, CsAlert, Feedback, Handoff, Role, User

logger = logging.getLogger(__name__)


def recurring_problems(
    session: Session, account_id: int, cfg: HealthConfig, today: date
) -> list[tuple[str, int]]:
    """Intents the account asked ``recurring_min_count``+ times in ``recurring_days``."""
    rules = cfg.support
    messages = account_messages(session, account_id, window_start(today, rules.recurring_days))
    return repeated_intents(messages, rules.recurring_min_count)


def didnt_help_clusters(
    session: Session,
    cfg: HealthConfig,
    today: date,
    account_ids: list[int] | None = None,
) -> list[tuple[str, int]]:
    """FAQ intents whose automatic answer got ``didnt_help_cluster_min``+ "didn't help" votes."""
    rules = cfg.support
    stmt = (
        select(Feedback.intent)
        .where(Feedback.kind == "didnt_help")
        .where(col(Feedback.created_at) >= window_start(today, rules.recurring_days))
    )
    if account_ids is not None:
        stmt = stmt.where(col(Feedback.account_id).in_(account_ids))
    counts = Counter(i for i in session.exec(stmt).all() if i)
    return [(i, n) for i, n in counts.most_common() if n >= rules.didnt_help_cluster_min]


@dataclass
class AccountActivity:
    account: Account
    handoffs: int = 0
    open_handoffs: int = 0
    recurring: list[tuple[str, int]] = field(default_factory=list)
    didnt_help: int = 0

    @property
    def quiet(self) -> bool:
        return not (self.handoffs or self.open_handoffs or self.recurring or self.didnt_help)


def account_activity(
    session: Session, account: Account, cfg: HealthConfig, today: date
) -> AccountActivity:
    """The account's support activity over the digest window."""
    since = window_start(today, cfg.support.digest_days)
    handoffs = session.exec(select(Handoff).where(Handoff.account_id == account.id)).all()
    votes = session.exec(
        select(Feedback.id)
        .where(Feedback.account_id == account.id)
        .where(Feedback.kind == "didnt_help")
        .where(col(Feedback.created_at) >= since)
    ).all()
    return AccountActivity(
        account,
        handoffs=sum(1 for h in handoffs if h.created_at >= since),
        open_handoffs=sum(1 for h in handoffs if h.status in ("waiting", "assigned")),
        recurring=recurring_problems(session, account.id or 0, cfg, today),
        didnt_help=len(votes),
    )


def digest_text(csm: User, activity: list[AccountActivity], days: int) -> str:
    """The digest body: one block per account with support activity, worst health first."""
    busy = [a for a in activity if not a.quiet]
    lines = [f"Support activity on your accounts, last {days} days ({len(busy)} active):"]
    order = {"red": 0, "yellow": 1, "green": 2}
    for a in sorted(
        busy, key=lambda a: (order.get(a.account.health_status or "", 3), a.account.name)
    ):
        acc = a.account
        lines.append(
            f"• {acc.name}: {a.handoffs} handoff(s), {a.open_handoffs} open"
            f" · health {acc.health_score if acc.health_score is not None else '?'}"
            f" ({acc.health_status or 'unknown'})"
        )
        if a.recurring:
            lines.append("  recurring: " + ", ".join(f"{intent} x{n}" for intent, n in a.recurring))
        if a.didnt_help:
            lines.append(f'  {a.didnt_help} "didn\'t help" vote(s) on automatic answers')
        for reason in (acc.attributes or {}).get("health_factors", [])[:2]:
            lines.append(f"  why: {reason}")
    quiet = len(activity) - len(busy)
    if quiet:
        lines.append(f"{quiet} other account(s) had no support activity.")
    return "\n".join(lines)


def send_digests(
    session: Session,
    cfg: HealthConfig,
    today: date,
    period: str,
    *,
    slack_webhook_url: str | None = None,
) -> list[CsAlert]:
    """Queue one digest per active CSM with accounts, to that CSM's own channels only."""
    sent: list[CsAlert] = []
    csms = session.exec(
        select(User)
        .where(col(User.role).in_([Role.csm.value, Role.admin.value]))
        .where(col(User.is_active).is_(True))
        .order_by(col(User.id))
    ).all()
    for csm in csms:
        accounts = session.exec(
            select(Account).where(Account.csm_id == csm.id).order_by(col(Account.id))
        ).all()
        if not accounts:
            continue
        activity = [account_activity(session, a, cfg, today) for a in accounts]
        clusters = didnt_help_clusters(session, cfg, today, [a.id or 0 for a in accounts])
        body = digest_text(csm, activity, cfg.support.digest_days)
        if clusters:
            body += "\nAnswers that often didn't help: " + ", ".join(
                f"{intent} x{n}" for intent, n in clusters
            )
        alert = alerts.send_to_csm(
            session,
            csm,
            kind="digest",
            title=f"Weekly support digest ({period})",
            body=body,
            details={"period": period, "accounts": [a.id for a in accounts]},
            dedupe=f"digest:{csm.id}:{period}",
            slack_webhook_url=slack_webhook_url,
        )
        if alert is not None:
            sent.append(alert)
    logger.info("queued %d CSM digest(s) for %s", len(sent), period)
    return sent
