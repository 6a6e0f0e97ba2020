"""Collision detection: who else has a conversation open, and who is typing a reply.

The console (and any API client) reports every few seconds that it is on a handoff and
whether its reply box is being typed in (:func:`touch`); a report counts for ``SEEN_SECONDS``
and "typing" for ``TYPING_SECONDS``, so a closed tab fades out by itself. The rows live in the
database (``handoff_viewers``), so it works across instances; one upsert per report keeps it
cheap, and old rows are pruned by the assignment sweep (:func:`prune`).

A reply to a handoff someone else is assigned asks for confirmation first (``handoff.desk``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from handoff import access
from handoff.access import Principal
from handoff.errors import NotFound
from handoff.models import Handoff, HandoffViewer, User, utcnow

SEEN_SECONDS = 15
TYPING_SECONDS = 8
PRUNE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Viewer:
    user_id: int
    name: str
    typing: bool
    seen_at: datetime


def _visible(session: Session, principal: Principal, handoff_id: int) -> None:
    access.require_staff(principal)
    stmt = access.visible_handoffs(select(Handoff.id).where(Handoff.id == handoff_id), principal)
    if session.exec(stmt).first() is None:
        raise NotFound(f"handoff {handoff_id} not found")


def touch(session: Session, principal: Principal, handoff_id: int, typing: bool) -> list[Viewer]:
    """Record that ``principal`` is on the handoff (typing or not); the others there now."""
    _visible(session, principal, handoff_id)
    now = utcnow()
    values = {"handoff_id": handoff_id, "user_id": principal.user_id, "typing": typing}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(HandoffViewer).values(**values, seen_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["handoff_id", "user_id"],
        set_={"typing": typing, "seen_at": stmt.excluded.seen_at},
    )
    session.execute(stmt)
    return others(session, principal, handoff_id, now)


def others(
    session: Session, principal: Principal, handoff_id: int, now: datetime | None = None
) -> list[Viewer]:
    """The other people on the handoff now, by name."""
    _visible(session, principal, handoff_id)
    now = now or utcnow()
    rows = session.exec(
        select(HandoffViewer, User)
        .join(User, col(User.id) == col(HandoffViewer.user_id))
        .where(HandoffViewer.handoff_id == handoff_id)
        .where(HandoffViewer.user_id != principal.user_id)
        .where(col(HandoffViewer.seen_at) > now - timedelta(seconds=SEEN_SECONDS))
        .order_by(col(User.name))
    ).all()
    typing_since = now - timedelta(seconds=TYPING_SECONDS)
    return [
        Viewer(u.id or 0, u.name, v.typing and v.seen_at > typing_since, v.seen_at) for v, u in rows
    ]


def prune(session: Session, now: datetime | None = None) -> int:
    """Forget reports older than an hour."""
    cutoff = (now or utcnow()) - PRUNE_AFTER
    result = session.execute(delete(HandoffViewer).where(col(HandoffViewer.seen_at) < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
