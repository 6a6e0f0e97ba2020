"""The handoff queue and its state machine.

States: ``waiting`` -> ``assigned`` (claim by a person, or ``assign`` by the system:
``handoff/assignment.py``) -> ``resolved``; ``assigned`` -> ``waiting`` (release, or
``requeue`` by the system when the assignee went away);
``assigned`` -> ``assigned`` (transfer to another agent); ``resolved`` -> ``waiting`` (the
customer writes again); ``waiting``/``assigned`` -> ``returned_to_bot``. Every change goes
through :func:`transition`, a guarded update on (status, version) that records who, when and
why in ``handoff_events`` and raises :class:`~handoff.errors.Conflict` when another actor
changed the handoff first. The conversation's mode follows: ``human`` while a handoff is
waiting or assigned, ``bot`` otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from handoff.errors import Conflict, InvalidTransition, NotFound
from handoff.hours import BusinessHours, sla_due_at
from handoff.models import (
    Conversation,
    ConversationMode,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    utcnow,
)

logger = logging.getLogger(__name__)

W, A, R, B = (
    HandoffStatus.waiting.value,
    HandoffStatus.assigned.value,
    HandoffStatus.resolved.value,
    HandoffStatus.returned_to_bot.value,
)

# transition name -> (allowed source states, target state)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "claim": (frozenset({W}), A),
    "assign": (frozenset({W}), A),
    "requeue": (frozenset({A}), W),
    "release": (frozenset({A}), W),
    "transfer": (frozenset({A}), A),
    "resolve": (frozenset({A}), R),
    "reopen": (frozenset({R}), W),
    "return_to_bot": (frozenset({W, A}), B),
}
OPEN_STATES = frozenset({W, A})
# why a handoff went to its assignee, unless the caller says (``assignment_reason``)
DEFAULT_ASSIGNMENT_REASON = {"claim": "claimed", "transfer": "transferred"}


@dataclass(frozen=True)
class Actor:
    """Who performs a transition: a user (agent, CSM, admin) or the system/customer."""

    kind: str  # agent, system, customer, bot
    user_id: int | None = None


SYSTEM = Actor("system")
CUSTOMER = Actor("customer")


def create_handoff(
    session: Session,
    conversation: Conversation,
    *,
    priority: int,
    reasons: list[str],
    intent: str | None,
    context: dict[str, Any],
    account_id: int | None,
    sla_minutes: int,
    hours: BusinessHours | None = None,
) -> Handoff:
    """Open a waiting handoff for a conversation and put the conversation in human mode.

    The first-response deadline counts ``sla_minutes`` on the priority's clock in ``hours``
    (business time, or 24/7; no ``hours``: 24/7).
    """
    now = utcnow()
    handoff = Handoff(
        conversation_id=conversation.id or 0,
        account_id=account_id,
        status=W,
        priority=priority,
        reasons=reasons,
        intent=intent,
        context=context,
        created_at=now,
        waiting_since=now,
        sla_due_at=sla_due_at(now, sla_minutes, priority, hours or BusinessHours()),
    )
    session.add(handoff)
    session.flush()
    session.add(
        HandoffEvent(
            handoff_id=handoff.id or 0,
            transition="escalate",
            from_status=None,
            to_status=W,
            actor=SYSTEM.kind,
            reason=",".join(reasons),
        )
    )
    conversation.mode = ConversationMode.human.value
    conversation.active_handoff_id = handoff.id
    session.add(conversation)
    session.flush()
    return handoff


def get_handoff(session: Session, handoff_id: int) -> Handoff:
    """Load a handoff or raise NotFound."""
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise NotFound(f"handoff {handoff_id} not found")
    return handoff


def transition(
    session: Session,
    handoff: Handoff,
    name: str,
    actor: Actor,
    *,
    reason: str | None = None,
    assignee_id: int | None = None,
    resolution_code: str | None = None,
    sla_minutes: int | None = None,
    hours: BusinessHours | None = None,
    sla_priority: int | None = None,
    assignment_reason: str | None = None,
) -> Handoff:
    """Apply a named transition atomically; raise InvalidTransition/Conflict on failure.

    ``claim``, ``assign`` and ``transfer`` keep why the handoff went to ``assignee_id`` in
    ``assignment_reason`` (it is cleared when the handoff returns to the queue).
    A ``reopen`` with ``sla_minutes`` restarts the first-response deadline on the clock of
    ``sla_priority`` (default: the handoff's) in ``hours``.
    """
    if name not in TRANSITIONS:
        raise InvalidTransition(f"unknown transition {name!r}")
    sources, target = TRANSITIONS[name]
    if handoff.status not in sources:
        raise InvalidTransition(f"cannot {name} a handoff that is {handoff.status}")
    now = utcnow()
    values: dict[str, Any] = {"status": target, "version": handoff.version + 1}
    if name in ("claim", "assign", "transfer"):
        values["assignee_id"] = assignee_id
        values["assignment_reason"] = (
            assignment_reason or DEFAULT_ASSIGNMENT_REASON.get(name) or None
        )
    if name in ("release", "reopen", "requeue"):
        values["assignee_id"] = None
        values["assignment_reason"] = None
        values["waiting_since"] = now
        if name == "reopen":
            values["resolved_at"] = None
            values["resolution_code"] = None
            values["first_response_at"] = None
            if sla_minutes is not None:
                priority = sla_priority or handoff.priority
                values["sla_due_at"] = sla_due_at(
                    now, sla_minutes, priority, hours or BusinessHours()
                )
    if name == "resolve":
        values["resolved_at"] = now
        values["resolution_code"] = resolution_code
    if name == "return_to_bot":
        values["resolved_at"] = now
        values["resolution_code"] = resolution_code or "returned_to_bot"
    result = session.execute(
        update(Handoff)
        .where(col(Handoff.id) == handoff.id)
        .where(col(Handoff.status) == handoff.status)
        .where(col(Handoff.version) == handoff.version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Nothing was written; the caller decides whether to roll back or try another row.
        raise Conflict(f"handoff {handoff.id} was changed by someone else; reload and retry")
    session.add(
        HandoffEvent(
            handoff_id=handoff.id or 0,
            transition=name,
            from_status=handoff.status,
            to_status=target,
            actor_user_id=actor.user_id,
            actor=actor.kind,
            reason=reason,
        )
    )
    conversation = session.get(Conversation, handoff.conversation_id)
    if conversation is not None:
        conversation.mode = (
            ConversationMode.human.value if target in OPEN_STATES else ConversationMode.bot.value
        )
        conversation.active_handoff_id = handoff.id
        session.add(conversation)
    session.flush()
    session.refresh(handoff)
    return handoff


def mark_first_response(session: Session, handoff: Handoff) -> None:
    """Record the first human response time once."""
    if handoff.first_response_at is None:
        handoff.first_response_at = utcnow()
        session.add(handoff)


def list_open(session: Session, *, limit: int = 200) -> list[Handoff]:
    """Open handoffs, most urgent first: priority, then longest waiting."""
    stmt = (
        select(Handoff)
        .where(col(Handoff.status).in_(list(OPEN_STATES)))
        .order_by(col(Handoff.priority), col(Handoff.waiting_since))
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def history(session: Session, handoff_id: int) -> list[HandoffEvent]:
    """The recorded transitions of a handoff, oldest first."""
    stmt = (
        select(HandoffEvent)
        .where(HandoffEvent.handoff_id == handoff_id)
        .order_by(col(HandoffEvent.id))
    )
    return list(session.exec(stmt).all())
