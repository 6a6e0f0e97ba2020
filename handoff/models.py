"""Database tables of triagebot (SQLModel).

Domain words follow Chatwoot: a Contact writes on a channel (ChannelIdentity), in a
Conversation made of Messages (incoming / outgoing / private notes / activity). A
Conversation owned by people has a Handoff that lives in the queue. Accounts carry the
Customer Success context. Outbound traffic (replies, CSM alerts) goes through OutboxEntry.

Table models hold secrets (password hashes, token hashes) and are never returned by an API
as they are; the API layer maps them to its own ``*Public`` schemas.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (stored as naive UTC by SQLite)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def _ts_opt(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kwargs)


class Role(enum.StrEnum):
    admin = "admin"
    agent = "agent"
    csm = "csm"


class Direction(enum.StrEnum):
    inbound = "inbound"
    outbound = "outbound"
    internal = "internal"  # private notes: never sent to the customer


class Author(enum.StrEnum):
    customer = "customer"
    bot = "bot"
    agent = "agent"
    system = "system"


class ConversationMode(enum.StrEnum):
    bot = "bot"  # the bot answers
    human = "human"  # a handoff is open: the bot stays silent


class HandoffStatus(enum.StrEnum):
    waiting = "waiting"
    assigned = "assigned"
    resolved = "resolved"
    returned_to_bot = "returned_to_bot"


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # Role
    password_hash: str | None = Field(default=None, max_length=255)
    api_token_hash: str | None = Field(default=None, max_length=128, unique=True)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    slack_webhook_url: str | None = Field(default=None, max_length=1000)
    is_active: bool = True
    created_at: datetime = _ts()
    # Console sessions issued before this instant are void (set at logout: a copied cookie
    # dies with the session it was copied from).
    sessions_valid_from: datetime | None = _ts_opt()
    # At most this many open handoffs are assigned to them automatically (``assignment``).
    capacity: int = 5


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=128, unique=True, index=True)
    name: str = Field(max_length=300)
    plan: str | None = Field(default=None, max_length=100)
    tier: str | None = Field(default=None, max_length=50)
    arr: float | None = None
    renewal_date: date | None = None
    next_qbr_date: date | None = None
    expansion_stage: str | None = Field(default=None, max_length=100)
    csm_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    # The person its conversations go to first when they are online (``assignment``).
    support_owner_id: int | None = Field(default=None, foreign_key="users.id")
    health_score: int | None = None
    health_status: str | None = Field(default=None, max_length=16)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320, index=True)
    link_token: str | None = Field(default=None, max_length=64, unique=True)
    unreachable: bool = False
    created_at: datetime = _ts()


class ChannelIdentity(SQLModel, table=True):
    """A contact's address on one channel (Telegram chat id, WhatsApp number, web session)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=300)
    last_inbound_at: datetime | None = _ts_opt()
    created_at: datetime = _ts()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    identity_id: int = Field(foreign_key="channel_identities.id", index=True)
    channel: str = Field(max_length=32)
    mode: str = Field(default=ConversationMode.bot.value, max_length=16)
    active_handoff_id: int | None = Field(default=None)
    created_at: datetime = _ts()
    last_message_at: datetime = _ts()


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_ext"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    channel: str = Field(max_length=32)
    external_id: str | None = Field(default=None, max_length=128)
    direction: str = Field(max_length=16)  # Direction
    author: str = Field(max_length=16)  # Author
    author_user_id: int | None = Field(default=None, foreign_key="users.id")
    kind: str = Field(default="text", max_length=32)  # text, note, activity, photo, sticker...
    text: str = ""
    intent: str | None = Field(default=None, max_length=100)
    confidence: float | None = None
    raw: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _ts()


class InboundEvent(SQLModel, table=True):
    """A raw inbound payload that did not become a message: unsupported or malformed.

    Kept so that nothing a customer sent is dropped silently (a dead-letter store).
    """

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_inbound_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str | None = Field(default=None, max_length=128)
    status: str = Field(max_length=16)  # ignored | dead
    reason: str = Field(max_length=500)
    body: str = ""
    received_at: datetime = _ts()


class Handoff(SQLModel, table=True):
    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_queue", "status", "priority", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    status: str = Field(default=HandoffStatus.waiting.value, max_length=20)
    priority: int = 3  # 1 = most urgent
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    intent: str | None = Field(default=None, max_length=100)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    assignee_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    version: int = 0
    created_at: datetime = _ts()
    waiting_since: datetime = _ts()
    sla_due_at: datetime | None = _ts_opt()
    first_response_at: datetime | None = _ts_opt()
    resolved_at: datetime | None = _ts_opt()
    resolution_code: str | None = Field(default=None, max_length=50)
    # Why it went to its assignee ("owner of Acme", "fewest open (2 of 5)", "claimed").
    assignment_reason: str | None = Field(default=None, max_length=200)


class HandoffEvent(SQLModel, table=True):
    """One recorded transition of a handoff's state machine (who, when, why)."""

    __tablename__ = "handoff_events"

    id: int | None = Field(default=None, primary_key=True)
    handoff_id: int = Field(foreign_key="handoffs.id", index=True)
    transition: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    actor: str = Field(max_length=32)  # system, customer, agent, bot
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts()


class OutboxEntry(SQLModel, table=True):
    """A message to deliver (customer reply or staff alert), committed with its cause.

    ``ordering_key`` groups entries that must leave in order (one chat); an entry is only
    sent when no earlier entry of its key is still pending. ``dedupe_key`` makes enqueueing
    idempotent (e.g. one CSM alert per handoff).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_ordering", "ordering_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # customer_message, csm_alert
    channel: str = Field(max_length=32)  # telegram, whatsapp, webchat, slack
    target: str = Field(max_length=1000)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ordering_key: str = Field(max_length=200)
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    status: str = Field(default=OutboxStatus.pending.value, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    locked_until: datetime | None = _ts_opt()
    last_error: str | None = Field(default=None, max_length=1000)
    provider_message_id: str | None = Field(default=None, max_length=200, index=True)
    delivery_status: str | None = Field(default=None, max_length=16)  # delivered, read, failed
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts_opt()


class Feedback(SQLModel, table=True):
    """A customer's verdict: on an automatic answer (helpful / didn't help) or a CSAT score."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    handoff_id: int | None = Field(default=None, foreign_key="handoffs.id")
    kind: str = Field(max_length=16)  # helpful, didnt_help, csat
    score: int | None = None  # CSAT 1-5
    intent: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts()


class UsageDaily(SQLModel, table=True):
    """One day of product usage for an account (idempotent on account + day)."""

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_usage_account_day"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    day: date
    active_users: int = 0
    seats: int = 0
    logins: int = 0
    key_feature_events: int = 0
    created_at: datetime = _ts()


class NpsResponse(SQLModel, table=True):
    __tablename__ = "nps_responses"
    __table_args__ = (UniqueConstraint("external_id", name="uq_nps_external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=128)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    contact_email: str | None = Field(default=None, max_length=320)
    score: int  # 0-10
    comment: str | None = None
    responded_on: date
    created_at: datetime = _ts()


class HealthSnapshot(SQLModel, table=True):
    """A computed health score with its factors, kept as history for trends."""

    __tablename__ = "health_snapshots"
    __table_args__ = (Index("ix_health_account_time", "account_id", "computed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    score: int
    status: str = Field(max_length=16)  # green, yellow, red
    factors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    computed_at: datetime = _ts()


class CsAlert(SQLModel, table=True):
    """A proactive alert to a CSM (turned red, usage drop, VIP quiet, escalation)."""

    __tablename__ = "cs_alerts"
    __table_args__ = (Index("ix_cs_alerts_account_kind", "account_id", "kind", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id")
    csm_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    handoff_id: int | None = Field(default=None, foreign_key="handoffs.id")
    kind: str = Field(max_length=32)  # vip_escalation, turned_red, usage_drop, vip_quiet, digest
    title: str = Field(max_length=300)
    body: str = ""
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    acknowledged_at: datetime | None = _ts_opt()
    acknowledged_by: int | None = Field(default=None, foreign_key="users.id")


class JobRun(SQLModel, table=True):
    """Exactly-once scheduled jobs: the first instance to insert (job, period) runs it."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    period: str = Field(max_length=64)  # e.g. 2026-11-25 for a daily job
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts_opt()
    result: str | None = Field(default=None, max_length=1000)


class Prompt(SQLModel, table=True):
    """A question we asked with one-tap answers (the buttons of one outbound message).

    Only a tap on a button of an open prompt of the same conversation counts, once: a rating,
    a vote or a clarification cannot be forged or repeated (``handoff/prompts.py``).
    """

    __tablename__ = "prompts"
    __table_args__ = (
        Index("ix_prompts_conversation_open", "conversation_id", "answered_at"),
        Index("ix_prompts_open_kind", "kind", "answered_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    message_id: int = Field(foreign_key="messages.id")  # the outbound message with the buttons
    kind: str = Field(max_length=16)  # helpful, csat, clarify, ...
    options: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    answered_at: datetime | None = _ts_opt()  # set once: chosen, superseded or expired
    outcome: str | None = Field(default=None, max_length=16)
    choice: str | None = Field(default=None, max_length=64)  # the tapped button's data
    answer_message_id: int | None = Field(default=None, foreign_key="messages.id")


class StaffSession(SQLModel, table=True):
    """A console login, named by a random id carried in the signed cookie.

    Revoking is by id (logout, deactivation): a copy of the cookie dies with its session,
    whatever the clock says (``handoff/users.py``).
    """

    __tablename__ = "staff_sessions"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    revoked_at: datetime | None = _ts_opt()


class SuggestionStatus(enum.StrEnum):
    open = "open"
    training = "training"  # accepted, the gated retrain runs
    accepted = "accepted"
    dismissed = "dismissed"


class Suggestion(SQLModel, table=True):
    """A cluster of customer questions the bot could not answer, offered to admins to teach.

    It names its messages by id (never copies their text), so erasing a customer
    (``handoff/privacy.py``) removes their words from every suggestion too.
    """

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_status_score", "status", "score"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=SuggestionStatus.open.value, max_length=16)
    label: str = Field(default="", max_length=300)
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # most representative first
    message_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: float = 0.0
    first_seen: datetime | None = _ts_opt()
    last_seen: datetime | None = _ts_opt()
    intent: str | None = Field(default=None, max_length=100)  # set on accept
    # before/after coverage and precision, or why the gate refused the new model
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, max_length=1000)
    decided_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    version: int = 0


class CorrectionStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Correction(SQLModel, table=True):
    """An agent's "the bot thought X, it was Y" about one customer message, for review."""

    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_status", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    predicted_intent: str | None = Field(default=None, max_length=100)
    correct_intent: str = Field(max_length=100)
    status: str = Field(default=CorrectionStatus.pending.value, max_length=16)
    created_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    reviewed_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = _ts()
    reviewed_at: datetime | None = _ts_opt()


class CannedReply(SQLModel, table=True):
    """A saved reply agents insert from the reply box (``/`` + words): a Jinja2 template with
    the conversation's variables, personal (``owner_user_id``) or shared (NULL)."""

    __tablename__ = "canned_replies"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    body: str = ""
    owner_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    uses: int = 0
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CannedReplyUse(SQLModel, table=True):
    """One sent reply that started from a canned reply (dashboard usage over a date range)."""

    __tablename__ = "canned_reply_uses"
    __table_args__ = (Index("ix_canned_reply_uses_time", "used_at"),)

    id: int | None = Field(default=None, primary_key=True)
    canned_reply_id: int = Field(foreign_key="canned_replies.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    used_at: datetime = _ts()


class Availability(enum.StrEnum):
    online = "online"
    away = "away"


class AgentPresence(SQLModel, table=True):
    """Whether a staff member takes automatic assignments: ``online`` until ``available_until``
    and, when set from the console, only while ``session_id`` is an open console session
    (logging out or the session expiring makes them away; ``handoff/availability.py``)."""

    __tablename__ = "agent_presence"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    status: str = Field(default=Availability.away.value, max_length=16)
    session_id: str | None = Field(default=None, max_length=64)
    available_until: datetime | None = _ts_opt()
    changed_at: datetime = _ts()


class HandoffViewer(SQLModel, table=True):
    """Who has a conversation open in the console and whether they are typing a reply; a row
    counts while ``seen_at`` is recent (``handoff/collision.py``)."""

    __tablename__ = "handoff_viewers"
    __table_args__ = (Index("ix_handoff_viewers_seen", "seen_at"),)

    handoff_id: int = Field(foreign_key="handoffs.id", primary_key=True)
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    typing: bool = False
    seen_at: datetime = _ts()
