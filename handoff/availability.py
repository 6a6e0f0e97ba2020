"""Whether staff take automatic assignments: online or away, and since when.

A person is *online* while their ``agent_presence`` row says so, ``available_until`` is in
the future and, when they went online from the console, that console session is still open.
So logging out (which revokes the session) or the session expiring makes them away without
anyone writing anything; :func:`away_since` says from when, which is what the sweep that
returns their handoffs to the queue needs (``handoff/assignment.py``).

Someone who never went online has no row and is never considered away: their claimed
handoffs stay with them, as before automatic assignment existed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from handoff.access import STAFF_ROLES
from handoff.errors import InvalidInput, NotFound
from handoff.models import AgentPresence, Availability, StaffSession, User, utcnow

logger = logging.getLogger(__name__)

MAX_API_MINUTES = 24 * 60  # an API client stays online at most a day without renewing


@dataclass(frozen=True)
class State:
    """A person's availability as the console and the API show it."""

    status: str  # online | away
    until: datetime | None = None


def _effective(
    presence: AgentPresence, session: StaffSession | None, now: datetime
) -> tuple[bool, datetime | None]:
    """(online now?, when they became away — None while online or if never known)."""
    if presence.status != Availability.online.value:
        return False, presence.changed_at
    ends = []
    if presence.available_until is not None:
        ends.append(presence.available_until)
    if presence.session_id is not None:
        if session is None:  # the session row was cleaned up: it ended long ago
            return False, presence.changed_at
        ends.append(session.expires_at)
        if session.revoked_at is not None:
            ends.append(session.revoked_at)
    end = min(ends) if ends else None
    if end is not None and end <= now:
        return False, end
    return True, None


def _rows(
    session: Session, user_ids: list[int] | None = None
) -> list[tuple[AgentPresence, StaffSession | None, User]]:
    stmt = (
        select(AgentPresence, StaffSession, User)
        .join(User, col(User.id) == col(AgentPresence.user_id))
        .join(StaffSession, col(StaffSession.id) == col(AgentPresence.session_id), isouter=True)
    )
    if user_ids is not None:
        stmt = stmt.where(col(AgentPresence.user_id).in_(user_ids))
    return list(session.exec(stmt).all())


def online_users(session: Session, now: datetime | None = None) -> dict[int, User]:
    """Active staff who are online now, by id."""
    now = now or utcnow()
    online_rows = select(AgentPresence.user_id).where(
        AgentPresence.status == Availability.online.value
    )
    ids = [i for i in session.exec(online_rows).all()]
    if not ids:  # the common case without availability in use: one cheap query
        return {}
    found: dict[int, User] = {}
    for presence, staff_session, user in _rows(session, ids):
        if (
            user.is_active
            and user.role in STAFF_ROLES
            and _effective(presence, staff_session, now)[0]
        ):
            found[user.id or 0] = user
    return found


def away_since(session: Session, now: datetime | None = None) -> dict[int, datetime]:
    """Everyone who went online at some point and is away now, with since when."""
    now = now or utcnow()
    found: dict[int, datetime] = {}
    for presence, staff_session, user in _rows(session):
        online, since = _effective(presence, staff_session, now)
        if not user.is_active:
            online, since = False, since or presence.changed_at
        if not online and since is not None:
            found[user.id or 0] = since
    return found


def state_of(session: Session, user_id: int, now: datetime | None = None) -> State:
    """Online (and until when) or away."""
    now = now or utcnow()
    rows = _rows(session, [user_id])
    if not rows:
        return State(Availability.away.value)
    presence, staff_session, _user = rows[0]
    online, _since = _effective(presence, staff_session, now)
    if not online:
        return State(Availability.away.value)
    ends = [t for t in (presence.available_until, staff_session and staff_session.expires_at) if t]
    return State(Availability.online.value, min(ends) if ends else None)


def set_availability(
    session: Session,
    user_id: int,
    status: str,
    *,
    session_id: str | None = None,
    minutes: int | None = None,
) -> State:
    """Go online or away. From the console (``session_id``) online lasts as long as that
    session; from the API, ``minutes`` (1 to a day)."""
    if status not in (Availability.online.value, Availability.away.value):
        raise InvalidInput("status must be online or away")
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.role not in STAFF_ROLES:
        raise NotFound(f"user {user_id} not found")
    now = utcnow()
    until: datetime | None = None
    if status == Availability.online.value:
        if session_id is not None:
            staff_session = session.get(StaffSession, session_id)
            if staff_session is None or staff_session.user_id != user_id:
                raise NotFound("console session not found")
            until = staff_session.expires_at
        else:
            span = minutes if minutes is not None else 8 * 60
            if not 1 <= span <= MAX_API_MINUTES:
                raise InvalidInput(f"minutes must be between 1 and {MAX_API_MINUTES}")
            until = now + timedelta(minutes=span)
    presence = session.get(AgentPresence, user_id)
    if presence is None:
        presence = AgentPresence(user_id=user_id)
    presence.status = status
    presence.session_id = session_id if status == Availability.online.value else None
    presence.available_until = until
    presence.changed_at = now
    session.add(presence)
    session.flush()
    logger.info("user %s is %s", user_id, status)
    return State(status, until)
