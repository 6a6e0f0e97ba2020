"""Prompts: the one-tap questions we asked a customer, each answerable once.

Every outbound message with buttons records a :class:`~handoff.models.Prompt` (by
:func:`handoff.replies.queue_reply`): its kind (``helpful``, ``csat``, ``clarify``...) and the
button data it offered. A tap counts only when :func:`take` finds an open prompt of the *same
conversation* that offered exactly that data, and closes it in a guarded update (``answered_at
IS NULL``), so of two taps, redeliveries or instances one wins. A web chat visitor can post
any ``callback_data``; a rating, a vote or a clarification nobody asked for does nothing.

A clarification ("did you mean ...?") is also closed when the customer writes something
else (:func:`close_open`, outcome ``superseded``), and by the sweep when nobody answered it
in time (:func:`claim_unanswered`, outcome ``expired``), which then hands the conversation to
a person.

Lock order, to stay free of deadlocks on PostgreSQL: the conversation's row, then its
prompts. An inbound message updates its conversation first (``contacts.touch``); the sweep
locks the conversation (``FOR UPDATE``) before closing its prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from handoff.models import Conversation, Prompt, utcnow

logger = logging.getLogger(__name__)

CLARIFY = "clarify"
CHOSEN, SUPERSEDED, EXPIRED = "chosen", "superseded", "expired"


def kind_of(data: str) -> str:
    """The kind of a button's data: what comes before the first ``:`` (``csat:5:12``)."""
    return data.partition(":")[0][:16]


def offer(
    session: Session,
    conversation_id: int,
    message_id: int,
    options: Sequence[str],
    *,
    kind: str | None = None,
    details: dict[str, Any] | None = None,
) -> Prompt:
    """Record that ``message_id`` offered these button data (kind: the first one's prefix)."""
    prompt = Prompt(
        conversation_id=conversation_id,
        message_id=message_id,
        kind=kind or kind_of(options[0] if options else ""),
        options=list(options),
        details=dict(details or {}),
    )
    session.add(prompt)
    session.flush()
    return prompt


@dataclass(frozen=True)
class Tap:
    """What a tap on a button turned out to be."""

    status: str  # taken, used (answered before), not_offered
    prompt: Prompt | None = None

    @property
    def taken(self) -> bool:
        return self.status == "taken"


def take(session: Session, conversation_id: int, data: str, answer_message_id: int | None) -> Tap:
    """Close the latest open prompt of this conversation that offered ``data``.

    ``taken`` when this tap answered it; ``used`` when it was offered but already answered
    (a repeat, a lost race); ``not_offered`` otherwise. Only ``taken`` may have an effect.
    """
    prompts = session.exec(
        select(Prompt)
        .where(Prompt.conversation_id == conversation_id)
        .where(col(Prompt.answered_at).is_(None))
        .order_by(col(Prompt.id).desc())
    ).all()
    for prompt in prompts:
        if data in prompt.options:
            if _close(session, prompt, CHOSEN, choice=data, answer_message_id=answer_message_id):
                return Tap("taken", prompt)
            return Tap("used", prompt)
    answered = session.exec(
        select(Prompt)
        .where(Prompt.conversation_id == conversation_id)
        .where(col(Prompt.answered_at).is_not(None))
        .order_by(col(Prompt.id).desc())
        .limit(200)
    ).all()
    used = next((prompt for prompt in answered if data in prompt.options), None)
    return Tap("used", used) if used is not None else Tap("not_offered")


def close_open(
    session: Session,
    conversation_id: int,
    kind: str,
    *,
    outcome: str = SUPERSEDED,
    answer_message_id: int | None = None,
) -> list[Prompt]:
    """Close this conversation's open prompts of ``kind`` (the customer moved on)."""
    prompts = session.exec(
        select(Prompt)
        .where(Prompt.conversation_id == conversation_id)
        .where(Prompt.kind == kind)
        .where(col(Prompt.answered_at).is_(None))
        .order_by(col(Prompt.id))
    ).all()
    return [
        prompt
        for prompt in prompts
        if _close(session, prompt, outcome, answer_message_id=answer_message_id)
    ]


def claim_unanswered(
    session: Session, kind: str, cutoff: datetime, *, limit: int = 100
) -> list[Prompt]:
    """The sweep: close open prompts of ``kind`` asked before ``cutoff`` as ``expired``.

    Returns the prompts this call closed; another instance's sweep, or a tap or a message
    that came first, closes them instead and they are not returned. The caller acts on them
    (hands the conversation to a person) in the same transaction.
    """
    due = session.exec(
        select(Prompt.id, Prompt.conversation_id)
        .where(Prompt.kind == kind)
        .where(col(Prompt.answered_at).is_(None))
        .where(col(Prompt.created_at) < cutoff)
        .order_by(col(Prompt.id))
        .limit(limit)
    ).all()
    claimed: list[Prompt] = []
    for prompt_id, conversation_id in due:
        # The conversation first, as an inbound message does (see the module docstring).
        session.exec(
            select(Conversation.id).where(Conversation.id == conversation_id).with_for_update()
        ).first()
        prompt = session.get(Prompt, prompt_id)
        if prompt is not None and _close(session, prompt, EXPIRED):
            claimed.append(prompt)
    return claimed


def _close(
    session: Session,
    prompt: Prompt,
    outcome: str,
    *,
    choice: str | None = None,
    answer_message_id: int | None = None,
) -> bool:
    """The guarded update: True when this call closed the prompt, False if it was closed."""
    result = session.execute(
        update(Prompt)
        .where(col(Prompt.id) == prompt.id)
        .where(col(Prompt.answered_at).is_(None))
        .values(
            answered_at=utcnow(),
            outcome=outcome,
            choice=choice[:64] if choice else None,
            answer_message_id=answer_message_id,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        logger.info("prompt %s was answered already", prompt.id)
        return False
    session.refresh(prompt)
    return True
