"""Canned replies: saved replies agents insert from the reply box, personal or shared.

Rules (every caller, API and console, goes through these functions):

* any staff member sees the shared replies and their own personal ones; another person's
  personal reply is "not found" (ids are not an oracle);
* staff create, change and delete their own personal replies; only admins create, change and
  delete shared ones (an agent gets ``PermissionDenied``);
* a body is a Jinja2 template checked before it is saved by the ``check`` the caller passes
  (the same sandbox and limits as FAQ answers: ``bot.template_limits``); a refused body,
  title or search is ``InvalidInput`` naming the field, and nothing is written;
* a use is counted when a reply that started from a canned reply is sent
  (:func:`record_use`): the reply's counter and one ``canned_reply_uses`` row for the
  dashboard's date range.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import Session, col, select

from handoff import access
from handoff.access import Principal
from handoff.errors import InvalidInput, NotFound, PermissionDenied
from handoff.models import CannedReply, CannedReplyUse, utcnow

logger = logging.getLogger(__name__)

MAX_TITLE = 100
MAX_BODY = 4000
MAX_LIST = 200
BodyCheck = Callable[[str], None]  # raises ValueError saying what is wrong with a body


def _visible(principal: Principal) -> ColumnElement[bool]:
    return or_(
        col(CannedReply.owner_user_id).is_(None),
        col(CannedReply.owner_user_id) == principal.user_id,
    )


def list_replies(session: Session, principal: Principal, query: str = "") -> list[CannedReply]:
    """Shared replies and the principal's own, matching every word of ``query`` in the title
    or body (case-insensitive), by title."""
    access.require_staff(principal)
    stmt = select(CannedReply).where(_visible(principal))
    for word in query.lower().split()[:10]:
        pattern = "%" + word.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                func.lower(col(CannedReply.title)).like(pattern, escape="\\"),
                func.lower(col(CannedReply.body)).like(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(col(CannedReply.title), col(CannedReply.id)).limit(MAX_LIST)
    return list(session.exec(stmt).all())


def get_reply(session: Session, principal: Principal, reply_id: int) -> CannedReply:
    """A reply the principal may use (shared, or their own), else NotFound."""
    access.require_staff(principal)
    found = session.exec(
        select(CannedReply).where(CannedReply.id == reply_id).where(_visible(principal))
    ).first()
    if found is None:
        raise NotFound(f"canned reply {reply_id} not found")
    return found


def _require_editor(principal: Principal, reply: CannedReply) -> None:
    if not access.may_edit_canned_reply(principal, reply.owner_user_id):
        raise PermissionDenied("only admins change shared canned replies")


def _clean(title: str, body: str, check: BodyCheck) -> tuple[str, str]:
    title = " ".join((title or "").split())
    body = (body or "").replace("\r\n", "\n").strip()
    if not title:
        raise InvalidInput("title: is empty")
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"title: longer than {MAX_TITLE} characters")
    if not body:
        raise InvalidInput("body: is empty")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"body: longer than {MAX_BODY} characters")
    try:
        check(body)
    except ValueError as exc:
        raise InvalidInput(f"body: {exc}") from exc
    return title, body


def create_reply(
    session: Session,
    principal: Principal,
    title: str,
    body: str,
    *,
    shared: bool,
    check: BodyCheck,
) -> CannedReply:
    """A new personal reply of the principal, or a shared one (admins only)."""
    access.require_staff(principal)
    if not access.may_edit_canned_reply(principal, None if shared else principal.user_id):
        raise PermissionDenied("only admins create shared canned replies")
    title, body = _clean(title, body, check)
    reply = CannedReply(title=title, body=body, owner_user_id=None if shared else principal.user_id)
    session.add(reply)
    session.flush()
    return reply


def update_reply(
    session: Session,
    principal: Principal,
    reply_id: int,
    *,
    title: str | None,
    body: str | None,
    check: BodyCheck,
) -> CannedReply:
    """Change the title and/or body of a reply the principal may edit."""
    reply = get_reply(session, principal, reply_id)
    _require_editor(principal, reply)
    reply.title, reply.body = _clean(
        reply.title if title is None else title, reply.body if body is None else body, check
    )
    reply.updated_at = utcnow()
    session.add(reply)
    session.flush()
    return reply


def delete_reply(session: Session, principal: Principal, reply_id: int) -> None:
    """Delete a reply the principal may edit (its usage history goes with it)."""
    reply = get_reply(session, principal, reply_id)
    _require_editor(principal, reply)
    for use in session.exec(
        select(CannedReplyUse).where(CannedReplyUse.canned_reply_id == reply_id)
    ).all():
        session.delete(use)
    session.flush()
    session.delete(reply)
    session.flush()


def record_use(
    session: Session, principal: Principal, reply_id: int, message_id: int | None
) -> None:
    """Count one sent reply that started from canned reply ``reply_id`` (visible to the
    principal, else NotFound)."""
    get_reply(session, principal, reply_id)
    session.exec(
        update(CannedReply)
        .where(col(CannedReply.id) == reply_id)
        .values(uses=col(CannedReply.uses) + 1)
    )
    session.add(
        CannedReplyUse(canned_reply_id=reply_id, user_id=principal.user_id, message_id=message_id)
    )
    session.flush()


def usage(
    session: Session, since: datetime, until: datetime, limit: int = 10
) -> list[tuple[str, bool, int]]:
    """(title, shared, uses) of the most used canned replies between ``since`` and ``until``."""
    rows = session.exec(
        select(CannedReply.title, CannedReply.owner_user_id, func.count())
        .join(CannedReplyUse, col(CannedReplyUse.canned_reply_id) == col(CannedReply.id))
        .where(col(CannedReplyUse.used_at) >= since, col(CannedReplyUse.used_at) < until)
        .group_by(col(CannedReply.id), col(CannedReply.title), col(CannedReply.owner_user_id))
        .order_by(func.count().desc(), col(CannedReply.title))
        .limit(limit)
    ).all()
    return [(title, owner is None, int(n)) for title, owner, n in rows]
