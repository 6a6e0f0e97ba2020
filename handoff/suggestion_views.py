"""What an admin sees of a suggestion: its representative messages, the accounts that asked
(with their ARR), and the agents' replies in those conversations as candidate answers.

Read-only; the text is read live from ``messages`` (an erased message drops out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from handoff.models import (
    Account,
    Author,
    Contact,
    Conversation,
    Direction,
    Message,
    Suggestion,
    SuggestionStatus,
)
from handoff.suggestions import live_messages

REPRESENTATIVES = 5
CANDIDATE_ANSWERS = 3


@dataclass(frozen=True)
class Quote:
    message_id: int
    conversation_id: int
    text: str
    created_at: datetime


@dataclass(frozen=True)
class AskingAccount:
    id: int
    name: str
    arr: float | None


@dataclass
class SuggestionView:
    id: int
    status: str
    label: str
    terms: list[str]
    count: int
    score: float
    first_seen: datetime | None
    last_seen: datetime | None
    representatives: list[Quote]
    accounts: list[AskingAccount]
    candidate_answers: list[str]
    intent: str | None
    error: str | None
    result: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # every live message, for accepting

    @property
    def arr_total(self) -> float:
        return float(sum(a.arr or 0.0 for a in self.accounts))


def _accounts(session: Session, conversation_ids: set[int]) -> list[AskingAccount]:
    if not conversation_ids:
        return []
    rows = session.exec(
        select(Account)
        .join(Contact, col(Contact.account_id) == col(Account.id))
        .join(Conversation, col(Conversation.contact_id) == col(Contact.id))
        .where(col(Conversation.id).in_(conversation_ids))
    ).all()
    unique = {a.id: a for a in rows}
    ordered = sorted(unique.values(), key=lambda a: (-(a.arr or 0.0), a.name))
    return [AskingAccount(a.id or 0, a.name, a.arr) for a in ordered]


def _candidate_answers(session: Session, messages: list[Message]) -> list[str]:
    """Agents' replies in the conversations after the asked messages, deduplicated."""
    first: dict[int, int] = {}
    for m in messages:
        first[m.conversation_id] = min(first.get(m.conversation_id, m.id or 0), m.id or 0)
    answers: dict[str, str] = {}
    for conversation_id, after in first.items():
        replies = session.exec(
            select(Message.text)
            .where(Message.conversation_id == conversation_id)
            .where(Message.direction == Direction.outbound.value)
            .where(Message.author == Author.agent.value)
            .where(col(Message.id) > after)
            .order_by(col(Message.id))
        ).all()
        for reply in replies:
            key = " ".join(reply.lower().split())
            if key and key not in answers:
                answers[key] = reply
            if len(answers) >= CANDIDATE_ANSWERS:
                return list(answers.values())
    return list(answers.values())


def view(session: Session, suggestion: Suggestion) -> SuggestionView:
    messages = live_messages(session, suggestion.message_ids or [])
    return SuggestionView(
        id=suggestion.id or 0,
        status=suggestion.status,
        label=suggestion.label,
        terms=list(suggestion.terms or []),
        count=len(messages),
        score=round(float(suggestion.score), 4),
        first_seen=suggestion.first_seen,
        last_seen=suggestion.last_seen,
        representatives=[
            Quote(m.id or 0, m.conversation_id, m.text, m.created_at)
            for m in messages[:REPRESENTATIVES]
        ],
        accounts=_accounts(session, {m.conversation_id for m in messages}),
        candidate_answers=_candidate_answers(session, messages),
        intent=suggestion.intent,
        error=suggestion.error,
        result=dict(suggestion.result or {}),
        examples=[m.text for m in messages],
    )


def list_views(session: Session, statuses: list[str] | None = None) -> list[SuggestionView]:
    """Suggestions (open ones by default), best score first; those left without any message
    (all erased) are not shown."""
    wanted = statuses or [SuggestionStatus.open.value, SuggestionStatus.training.value]
    rows = session.exec(
        select(Suggestion)
        .where(col(Suggestion.status).in_(wanted))
        .order_by(col(Suggestion.score).desc(), col(Suggestion.id))
    ).all()
    views = [view(session, s) for s in rows]
    return [v for v in views if v.count > 0]


def accepted(session: Session) -> list[Suggestion]:
    """Accepted suggestions, latest first (their before/after figures)."""
    return list(
        session.exec(
            select(Suggestion)
            .where(Suggestion.status == SuggestionStatus.accepted.value)
            .order_by(col(Suggestion.updated_at).desc())
        ).all()
    )
