"""The console's side of assignment and collision: the Online/Away toggle, the presence
reports of a conversation page, and the admin forms for capacities and support owners.

Each POST checks the CSRF token (``console.CSRF``) and calls one ``handoff`` service, which
enforces who may do what (capacities and owners: admins only).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session, col, select

from bot.web.console import (
    CSRF,
    HEADERS,
    DbDep,
    StaffDep,
    StaffJsonDep,
    _redirect,
    _safe_next,
)
from bot.web.deps import ServicesDep
from bot.web.forms import PathId, bounded_int, refuse_unstorable_input
from handoff import assignment, collision
from handoff.errors import InvalidInput, NotFound, TriageError
from handoff.models import Account, Role, User

ADMIN_URL = "/console/admin#assignment"

router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)

Short = Annotated[str, Form(max_length=500)]


@router.post("/availability", dependencies=CSRF)
def set_availability(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    status: Short = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Go online for as long as this console session lasts, or away."""
    target = _safe_next(next)
    try:
        state = assignment.change_availability(
            services.engine,
            staff.principal,
            status,
            services.models.config().policy.assignment,
            session_id=staff.session.session_id,
        )
    except TriageError as exc:
        return _redirect(request, target, str(exc), "error")
    if state.status == "online":
        return _redirect(request, target, "You are online: new conversations come to you.")
    return _redirect(request, target, "You are away: nothing new is assigned to you.")


@router.post("/handoffs/{handoff_id}/presence", dependencies=CSRF)
def presence(
    handoff_id: PathId, staff: StaffJsonDep, db: DbDep, typing: Short = ""
) -> JSONResponse:
    """This agent is on the conversation (typing or not); who else is, as JSON."""
    try:
        viewers = collision.touch(db, staff.principal, handoff_id, bool(typing))
    except NotFound:
        db.rollback()
        return JSONResponse({"detail": "not found"}, status_code=404, headers=HEADERS)
    db.commit()
    return JSONResponse(
        {"viewers": [{"name": v.name, "typing": v.typing} for v in viewers]}, headers=HEADERS
    )


def assignment_values(db: Session) -> dict[str, Any]:
    """What the admin page's assignment section shows."""
    people = db.exec(select(User).order_by(col(User.name))).all()
    owners = [u for u in people if u.is_active and u.role in assignment.OWNER_ROLES]
    accounts = db.exec(select(Account).order_by(col(Account.name))).all()
    names = {u.id: u.name for u in people}
    return {
        "capacities": [u for u in people if u.is_active and u.role != Role.csm.value],
        "owner_choices": owners,
        "owned_accounts": [
            {
                "id": a.id,
                "name": a.name,
                "owner_id": a.support_owner_id,
                "csm_id": a.csm_id,
                "csm": names.get(a.csm_id, ""),
            }
            for a in accounts
        ],
    }


@router.post("/admin/users/{user_id}/capacity", dependencies=CSRF)
def set_capacity(
    user_id: PathId, request: Request, staff: StaffDep, db: DbDep, capacity: Short = ""
) -> Response:
    try:
        value = bounded_int(capacity.strip())
        if value is None:
            raise InvalidInput("capacity must be a whole number between 1 and 100")
        user = assignment.set_capacity(db, staff.principal, user_id, value)
    except TriageError as exc:
        db.rollback()
        return _redirect(request, ADMIN_URL, str(exc), "error")
    db.commit()
    return _redirect(request, ADMIN_URL, f"{user.name} now takes up to {user.capacity}.")


@router.post("/admin/accounts/{account_id}/support-owner", dependencies=CSRF)
def set_support_owner(
    account_id: PathId, request: Request, staff: StaffDep, db: DbDep, user_id: Short = ""
) -> Response:
    try:
        owner = bounded_int(user_id.strip()) if user_id.strip() else None
        if user_id.strip() and owner is None:
            raise InvalidInput("support_owner_id: choose a person from the list")
        account = assignment.set_support_owner(db, staff.principal, account_id, owner)
    except TriageError as exc:
        db.rollback()
        return _redirect(request, ADMIN_URL, str(exc), "error")
    db.commit()
    who = "nobody" if owner is None else "the chosen owner"
    return _redirect(request, ADMIN_URL, f"{account.name}: support owner is {who}.")
