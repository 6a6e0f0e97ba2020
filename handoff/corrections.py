"""Agents' corrections of single messages ("the bot thought X, it was Y"), reviewed by an
admin before they become training examples. All writes to ``corrections`` are here.

``pending --approve--> approved``, ``pending --reject--> rejected``: one guarded update each,
so two admins cannot both approve a correction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from handoff import access
from handoff.access import Principal
from handoff.errors import Conflict, InvalidInput, NotFound
from handoff.models import Author, Correction, CorrectionStatus, Direction, Message, utcnow


@dataclass(frozen=True)
class CorrectionView:
    correction: Correction
    text: str
    conversation_id: int


def create(
    session: Session,
    principal: Principal,
    message_id: int,
    correct_intent: str,
    known_intents: Collection[str],
) -> Correction:
    """Record a pending correction of a customer's text message (caller commits)."""
    access.require_staff(principal)
    message = session.get(Message, message_id)
    if (
        message is None
        or message.direction != Direction.inbound.value
        or message.author != Author.customer.value
    ):
        raise NotFound(f"customer message {message_id} not found")
    if not message.text.strip():
        raise InvalidInput("that message has no text to learn from")
    if correct_intent not in known_intents:
        raise InvalidInput(f"unknown intent {correct_intent!r}")
    correction = Correction(
        message_id=message_id,
        predicted_intent=message.intent,
        correct_intent=correct_intent,
        created_by_user_id=principal.user_id,
    )
    session.add(correction)
    session.flush()
    return correction


def pending(session: Session) -> list[CorrectionView]:
    rows = session.exec(
        select(Correction, Message)
        .join(Message, col(Message.id) == col(Correction.message_id))
        .where(Correction.status == CorrectionStatus.pending.value)
        .order_by(col(Correction.created_at))
    ).all()
    return [CorrectionView(c, m.text, m.conversation_id) for c, m in rows if m.text.strip()]


def get(session: Session, correction_id: int) -> CorrectionView:
    correction = session.get(Correction, correction_id)
    message = session.get(Message, correction.message_id) if correction else None
    if correction is None or message is None:
        raise NotFound(f"correction {correction_id} not found")
    return CorrectionView(correction, message.text, message.conversation_id)


def review(session: Session, principal: Principal, correction: Correction, approve: bool) -> None:
    """Approve or reject a pending correction (caller commits)."""
    access.require_admin(principal, "review corrections")
    if correction.status != CorrectionStatus.pending.value:
        raise Conflict(f"correction {correction.id} is {correction.status} already")
    target = CorrectionStatus.approved if approve else CorrectionStatus.rejected
    result = session.execute(
        update(Correction)
        .where(col(Correction.id) == correction.id)
        .where(col(Correction.status) == CorrectionStatus.pending.value)
        .values(status=target.value, reviewed_by_user_id=principal.user_id, reviewed_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"correction {correction.id} was reviewed by someone else")
    session.refresh(correction)
