"""Demo data for ``make run``: staff users, accounts and contacts (idempotent)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pwdlib import PasswordHash
from sqlmodel import Session, select

from bot.demo_month import add_demo_month
from bot.settings import ROOT, Settings
from handoff import queue, sentiment, signals
from handoff.db import build_engine
from handoff.health import HealthConfig, load_health_config, recompute_health
from handoff.models import (
    Account,
    ChannelIdentity,
    Contact,
    Conversation,
    Handoff,
    HealthSnapshot,
    Message,
    NpsResponse,
    User,
)

DEMO_FILE = ROOT / "data" / "demo" / "demo.yaml"


def load_demo(settings: Settings, path: Path = DEMO_FILE) -> str:
    """Upsert the demo users, accounts and contacts; returns a one-line summary."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    hasher = PasswordHash.recommended()
    engine = build_engine(settings.database_url)
    today = date.today()
    with Session(engine) as session:
        users: dict[str, User] = {}
        for row in data.get("users", []):
            user = session.exec(select(User).where(User.email == row["email"])).first() or User(
                email=row["email"], name=row["name"], role=row["role"]
            )
            user.name, user.role = row["name"], row["role"]
            if settings.environment != "prod" and user.password_hash is None:
                user.password_hash = hasher.hash(row["password"])
            session.add(user)
            users[user.email] = user
        session.flush()
        accounts: dict[str, Account] = {}
        for row in data.get("accounts", []):
            account = session.exec(
                select(Account).where(Account.external_id == row["external_id"])
            ).first() or Account(external_id=row["external_id"], name=row["name"])
            account.name = row["name"]
            account.plan, account.tier, account.arr = (
                row.get("plan"),
                row.get("tier"),
                row.get("arr"),
            )
            account.renewal_date = _in_days(today, row.get("renewal_in_days"))
            account.next_qbr_date = _in_days(today, row.get("qbr_in_days"))
            account.expansion_stage = row.get("expansion_stage")
            account.health_score = row.get("health_score")
            account.health_status = row.get("health_status")
            csm = users.get(row.get("csm", ""))
            account.csm_id = csm.id if csm else None
            session.add(account)
            accounts[account.external_id] = account
        session.flush()
        for row in data.get("contacts", []):
            contact = session.exec(select(Contact).where(Contact.email == row["email"])).first()
            if contact is None:
                contact = Contact(email=row["email"], link_token=row.get("link_token"))
            contact.name = row["name"]
            contact.account_id = accounts[row["account"]].id
            session.add(contact)
        session.flush()
        options = signals.SignalOptions(load_health_config(settings.health_path), today)
        for row in data.get("accounts", []):
            account = accounts[row["external_id"]]
            _demo_signals(session, account, row, today)
            _demo_history(session, account, options.health, today)
            signals.refresh_account(session, account, options)
        month = add_demo_month(session, users.get("agent@demo.test"), today)
        session.commit()
    engine.dispose()
    return (
        f"demo data: {len(data.get('users', []))} users, {len(data.get('accounts', []))} "
        f"accounts, {len(data.get('contacts', []))} contacts"
        + (f", {month} past conversations" if month else "")
    )


def _demo_signals(session: Session, account: Account, row: dict[str, Any], today: date) -> None:
    """42 days of usage, an NPS answer and this week's escalations (idempotent)."""
    usage = row.get("usage")
    if usage:
        for back in range(42):
            users = usage["recent"] if back < usage.get("recent_days", 10) else usage["prior"]
            data = signals.UsageIn(active_users=users, seats=usage["seats"], logins=users * 2)
            signals.upsert_usage(session, account, today - timedelta(days=back), data)
    if row.get("nps") is not None:
        answer = f"demo-{account.external_id}"
        if (
            session.exec(select(NpsResponse).where(NpsResponse.external_id == answer)).first()
            is None
        ):
            session.add(
                NpsResponse(
                    external_id=answer,
                    account_id=account.id or 0,
                    score=row["nps"],
                    responded_on=today - timedelta(days=10),
                )
            )
    texts = row.get("escalations") or []
    has = session.exec(select(Handoff.id).where(Handoff.account_id == account.id)).first()
    if texts and has is None:
        contact = Contact(account_id=account.id, name=f"{account.name} user")
        session.add(contact)
        session.flush()
        for i, text in enumerate(texts):
            identity = ChannelIdentity(
                contact_id=contact.id or 0, channel="webchat", external_id=f"demo-{account.id}-{i}"
            )
            session.add(identity)
            session.flush()
            conversation = Conversation(
                contact_id=contact.id or 0, identity_id=identity.id or 0, channel="webchat"
            )
            session.add(conversation)
            session.flush()
            negativity = sentiment.negativity(text)
            session.add(
                Message(
                    conversation_id=conversation.id or 0,
                    channel="webchat",
                    external_id=f"demo-{account.id}-{i}",
                    direction="inbound",
                    author="customer",
                    text=text,
                    raw={"sentiment": {"negativity": negativity}},
                )
            )
            queue.create_handoff(
                session,
                conversation,
                priority=2,
                reasons=["negative_sentiment"] if negativity >= 0.7 else ["requested_human"],
                intent=None,
                context={},
                account_id=account.id,
                sla_minutes=60,
            )
    session.flush()


def _demo_history(session: Session, account: Account, cfg: HealthConfig, today: date) -> None:
    """Weekly health over the past four weeks, scored as of each of those days, so the
    console shows a trend from the first start (only when the account has no history)."""
    if session.exec(
        select(HealthSnapshot.id).where(HealthSnapshot.account_id == account.id)
    ).first():
        return
    for back in (28, 21, 14, 7):
        day = today - timedelta(days=back)
        at = datetime.combine(day, time(12), tzinfo=UTC)
        recompute_health(session, account, cfg, day, at=at)


def _in_days(today: date, days: int | None) -> date | None:
    return today + timedelta(days=days) if days is not None else None
