"""A month of demo conversations, so a fresh ``make run`` shows what the dashboard is for.

Deterministic (a seeded generator) and loaded once: skipped when the demo month is already in
the database. The rows are what the service would have recorded at the time: the customer's
message, the bot's answer and the customer's vote; or a handoff with its events (escalate,
claim, resolve), the agent's reply and a CSAT score. Timestamps are in the past, so nothing
here runs a transition now; the live demo handoffs of ``bot.demo`` stay the only open ones.

The month's customers are anonymous web chat visitors: the demo accounts' health tells its own
story (a usage drop, three escalations, a healthy account) and must not be blurred by it.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from handoff.models import (
    ChannelIdentity,
    Contact,
    Conversation,
    Feedback,
    Handoff,
    HandoffEvent,
    Message,
    User,
)

MARKER = "demo-month-"  # the external ids of the month's chats start with it

# (intent, what the customer wrote) for questions the bot answers
ANSWERED = [
    ("password_reset", "i forgot my password"),
    ("invoice_request", "where can I download last month's invoice?"),
    ("add_users_seats", "how do i add a user to our workspace"),
    ("data_export", "how do I export all our data to csv"),
    ("two_factor_auth", "how do I turn on 2fa"),
    ("integrations", "does it work with slack?"),
    ("payment_failed", "my card was declined"),
    ("service_status", "is it down right now?"),
]
# (intent, what the customer wrote, reason codes) for what goes to a person
ESCALATED = [
    ("talk_to_human", "can I talk to a person please", ["requested_human"]),
    ("refund_request", "I want a refund for the seats we never used", ["strategic_intent"]),
    ("complaint", "the export failed again, this is unacceptable", ["negative_sentiment"]),
    (
        "contract_renewal",
        "when is our renewal date? we want to discuss terms",
        ["strategic_intent"],
    ),
]


def add_demo_month(session: Session, agent: User | None, today: date, days: int = 30) -> int:
    """Add ``days`` days of conversations ending yesterday; returns how many (0: already there)."""
    loaded = session.exec(
        select(ChannelIdentity.id).where(col(ChannelIdentity.external_id).startswith(MARKER))
    ).first()
    if loaded is not None:
        return 0
    rng = random.Random(14)
    count = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        per_day = rng.randint(2, 4) if day.weekday() >= 5 else rng.randint(5, 9)
        for n in range(per_day):
            at = datetime.combine(day, time(8 + rng.randint(0, 9), rng.randint(0, 59)), tzinfo=UTC)
            contact = Contact(name=None)
            session.add(contact)
            session.flush()
            key = f"{MARKER}{day.isoformat()}-{n}"
            conversation = _conversation(session, contact, key, at)
            if rng.random() < 0.22:
                _escalated(session, rng, conversation, contact, agent, key, at)
            else:
                _answered(session, rng, conversation, contact, key, at)
            count += 1
    session.flush()
    return count


def _conversation(session: Session, contact: Contact, key: str, at: datetime) -> Conversation:
    identity = ChannelIdentity(contact_id=contact.id or 0, channel="webchat", external_id=key)
    session.add(identity)
    session.flush()
    conversation = Conversation(
        contact_id=contact.id or 0,
        identity_id=identity.id or 0,
        channel="webchat",
        created_at=at,
        last_message_at=at,
    )
    session.add(conversation)
    session.flush()
    return conversation


def _message(
    session: Session, conversation: Conversation, key: str, at: datetime, **values: object
) -> None:
    session.add(
        Message(
            conversation_id=conversation.id or 0,
            channel="webchat",
            external_id=key,
            created_at=at,
            **values,  # type: ignore[arg-type]
        )
    )


def _answered(
    session: Session,
    rng: random.Random,
    conversation: Conversation,
    contact: Contact,
    key: str,
    at: datetime,
) -> None:
    intent, text = rng.choice(ANSWERED)
    _message(
        session, conversation, f"{key}-in", at,
        direction="inbound", author="customer", text=text, intent=intent, confidence=0.9,
    )  # fmt: skip
    answered_at = at + timedelta(seconds=2)
    _message(
        session, conversation, f"{key}-out", answered_at,
        direction="outbound", author="bot", text=f"(the {intent} answer)", intent=intent,
    )  # fmt: skip
    if rng.random() < 0.45:
        kind = "helpful" if rng.random() < 0.75 else "didnt_help"
        session.add(
            Feedback(
                conversation_id=conversation.id or 0,
                account_id=contact.account_id,
                kind=kind,
                intent=intent,
                created_at=answered_at + timedelta(minutes=1),
            )
        )


def _escalated(
    session: Session,
    rng: random.Random,
    conversation: Conversation,
    contact: Contact,
    agent: User | None,
    key: str,
    at: datetime,
) -> None:
    intent, text, reasons = rng.choice(ESCALATED)
    _message(
        session, conversation, f"{key}-in", at,
        direction="inbound", author="customer", text=text, intent=intent, confidence=0.8,
    )  # fmt: skip
    answered = at + timedelta(minutes=rng.randint(3, 55))
    resolved = answered + timedelta(minutes=rng.randint(10, 300))
    priority = 1 if "negative_sentiment" in reasons else 2 if contact.account_id else 3
    handoff = Handoff(
        conversation_id=conversation.id or 0,
        account_id=contact.account_id,
        status="resolved",
        priority=priority,
        reasons=reasons,
        intent=intent,
        assignee_id=agent.id if agent else None,
        created_at=at,
        waiting_since=at,
        sla_due_at=at + timedelta(minutes=60),
        first_response_at=answered,
        resolved_at=resolved,
        resolution_code="answered",
    )
    session.add(handoff)
    session.flush()
    steps = [
        ("escalate", None, "waiting", "system", at),
        ("claim", "waiting", "assigned", "agent", answered - timedelta(minutes=1)),
        ("resolve", "assigned", "resolved", "agent", resolved),
    ]
    for transition, source, target, actor, when in steps:
        session.add(
            HandoffEvent(
                handoff_id=handoff.id or 0,
                transition=transition,
                from_status=source,
                to_status=target,
                actor=actor,
                actor_user_id=agent.id if agent and actor == "agent" else None,
                reason=",".join(reasons) if transition == "escalate" else None,
                created_at=when,
            )
        )
    _message(
        session, conversation, f"{key}-agent", answered,
        direction="outbound", author="agent", author_user_id=agent.id if agent else None,
        text="Thanks for waiting, I'm on it.",
    )  # fmt: skip
    if rng.random() < 0.6:
        session.add(
            Feedback(
                conversation_id=conversation.id or 0,
                account_id=contact.account_id,
                handoff_id=handoff.id,
                kind="csat",
                score=rng.choice([5, 5, 5, 4, 4, 3, 2]),
                created_at=resolved + timedelta(minutes=2),
            )
        )
