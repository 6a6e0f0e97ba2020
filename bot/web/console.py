"""The agent console: login, the live queue, a conversation with its CS context, the CSM view.

Server-rendered (Jinja2 with autoescape) with a little vanilla JS from ``/static/console``
that polls JSON endpoints and builds DOM with ``textContent`` only. Authorization is the
``handoff.desk`` services' job (a CSM sees only their accounts; another account's handoff is
"not found"); this module authenticates (signed session cookie, ``bot.web.sessions``), checks
the CSRF token of every POST, calls one service, commits and redirects with a flash message.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.web import console_views as views
from bot.web.console_composer import composer
from bot.web.deps import ServicesDep
from bot.web.forms import PathId, bounded_int, refuse_unstorable_input
from bot.web.sessions import (
    COOKIE_NAME,
    COOKIE_PATH,
    FLASH_COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
    LoginLimiter,
    SessionSigner,
    csrf_ok,
)
from handoff import access, alerts, availability, collision, context, desk, users
from handoff.errors import InvalidInput, NotFound, TriageError
from handoff.health import health_trends
from handoff.hours import BusinessHours
from handoff.models import Account, Handoff, Role, User

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
STAFF_ROLES = access.STAFF_ROLES
WRONG_LOGIN = "Wrong email or password."
FLASH_SECONDS = 60
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)


@dataclass
class ConsoleState:
    signer: SessionSigner
    limiter: LoginLimiter


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the session signer at start-up (a random key when SESSION_SECRET is unset)."""
    secret = app.state.services.settings.session_secret
    app.state.console = ConsoleState(
        SessionSigner.from_setting(secret.get_secret_value() if secret else None),
        LoginLimiter(),
    )
    yield


router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    lifespan=_lifespan,
    dependencies=[Depends(refuse_unstorable_input)],
)


# -------------------------------------------------------------------------- dependencies
def _state(request: Request) -> ConsoleState:
    return request.app.state.console  # type: ignore[no-any-return]


StateDep = Annotated[ConsoleState, Depends(_state)]


def _db(services: ServicesDep) -> Iterator[Session]:
    with Session(services.engine, expire_on_commit=False) as session:
        yield session


DbDep = Annotated[Session, Depends(_db)]


@dataclass
class Staff:
    user: User
    principal: desk.Principal
    session: ConsoleSession


def _who(request: Request, state: ConsoleState, db: Session) -> Staff | None:
    session = state.signer.verify(request.cookies.get(COOKIE_NAME))
    if session is None or session.user_id is None:
        return None
    user = db.get(User, session.user_id)
    if user is None or not user.is_active or user.role not in STAFF_ROLES:
        return None
    if not users.session_active(db, user, session.session_id):
        return None
    return Staff(user, desk.Principal.of(user), session)


def _staff_page(request: Request, state: StateDep, db: DbDep) -> Staff:
    staff = _who(request, state, db)
    if staff is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = "/console/login?" + urlencode({"next": target})
        raise HTTPException(303, "log in first", headers={**HEADERS, "Location": login})
    return staff


def _staff_json(request: Request, state: StateDep, db: DbDep) -> Staff:
    staff = _who(request, state, db)
    if staff is None:
        raise HTTPException(401, "log in first", headers=HEADERS)
    return staff


StaffDep = Annotated[Staff, Depends(_staff_page)]
StaffJsonDep = Annotated[Staff, Depends(_staff_json)]


async def _check_csrf(request: Request, state: StateDep) -> None:
    """Every console POST carries the session's CSRF token; otherwise 403, nothing done."""
    form = await request.form()
    token = form.get("csrf_token")
    session = state.signer.verify(request.cookies.get(COOKIE_NAME))
    if not csrf_ok(session, token if isinstance(token, str) else None):
        raise HTTPException(403, "missing or invalid CSRF token; reload the page", headers=HEADERS)


CSRF = [Depends(_check_csrf)]


# ------------------------------------------------------------------------------ helpers
def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and "\\" not in target and "//" not in target:
        return target
    return "/console"


def _set_session(response: Response, request: Request, value: str, max_age: int) -> None:
    _set_cookie(response, request, COOKIE_NAME, value, max_age)


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.app.state.services.settings.public_url.startswith("https://"),
    )


def _redirect(
    request: Request, url: str, message: str | None = None, kind: str = "ok"
) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    if message:
        value = _state(request).signer.sign(
            {"m": message[:500], "k": kind, "exp": int(time.time()) + FLASH_SECONDS}
        )
        _set_cookie(response, request, FLASH_COOKIE, value, FLASH_SECONDS)
    return response


def _flash(request: Request) -> dict[str, str] | None:
    data = _state(request).signer.unsign(request.cookies.get(FLASH_COOKIE))
    if not data or not isinstance(data.get("exp"), int) or data["exp"] < time.time():
        return None
    return {
        "message": str(data.get("m", "")),
        "kind": "error" if data.get("k") == "error" else "ok",
    }


def _page(
    request: Request,
    name: str,
    staff: Staff | None,
    values: dict[str, Any],
    *,
    status: int = 200,
    csrf: str | None = None,
) -> HTMLResponse:
    flash = _flash(request)
    me = None
    if staff is not None:
        me = {"name": staff.user.name, "role": staff.user.role, "id": staff.user.id}
        with Session(request.app.state.services.engine) as db:  # the Online/Away toggle
            me["availability"] = availability.state_of(db, staff.user.id or 0).status
    response = templates.TemplateResponse(
        request,
        f"console/{name}",
        {
            "me": me,
            "csrf": csrf or (staff.session.csrf if staff else ""),
            "flash": flash,
            **values,
        },
        status_code=status,
        headers=HEADERS,
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def _not_found(request: Request, staff: Staff, what: str) -> HTMLResponse:
    return _page(request, "not_found.html", staff, {"what": what, "nav": ""}, status=404)


def _now() -> datetime:
    return datetime.now(UTC)


# -------------------------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: StateDep, db: DbDep, next: str = "/console") -> Response:
    if _who(request, state, db) is not None:
        return _redirect(request, _safe_next(next))
    session = state.signer.verify(request.cookies.get(COOKIE_NAME))
    value = None
    if session is None:
        session, value = state.signer.issue(None)
    response = _page(
        request, "login.html", None, {"next": _safe_next(next), "email": ""}, csrf=session.csrf
    )
    if value is not None:
        _set_session(response, request, value, session.expires_at - session.issued_at)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    state: StateDep,
    db: DbDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    """Check email + password; failures are counted per email and client address."""
    anonymous = state.signer.verify(request.cookies.get(COOKIE_NAME))
    values = {"next": _safe_next(next), "email": email}
    if not csrf_ok(anonymous, csrf_token):
        fresh, value = state.signer.issue(None)
        values["error"] = "Your login form expired. Please try again."
        response = _page(request, "login.html", None, values, status=403, csrf=fresh.csrf)
        _set_session(response, request, value, fresh.expires_at - fresh.issued_at)
        return response
    assert anonymous is not None
    address = request.client.host if request.client else "?"
    wait = state.limiter.retry_after(email, address)
    if wait > 0:
        values["error"] = f"Too many failed attempts. Try again in {views.duration(wait)}."
        return _page(request, "login.html", None, values, status=429, csrf=anonymous.csrf)
    try:
        user = users.by_email(db, email.strip())
    except NotFound:
        user = None
    probe = user or User(email="", name="", role="", password_hash=None)
    if not users.verify_password(probe, password) or user is None or user.role not in STAFF_ROLES:
        state.limiter.failed(email, address)
        values["error"] = WRONG_LOGIN
        return _page(request, "login.html", None, values, status=401, csrf=anonymous.csrf)
    state.limiter.succeeded(email, address)
    session_id = users.open_session(db, user, timedelta(seconds=SESSION_SECONDS))
    db.commit()
    # a new session and CSRF token at login
    session, value = state.signer.issue(user.id, session_id=session_id)
    done = _redirect(request, _safe_next(next))
    _set_session(done, request, value, session.expires_at - session.issued_at)
    return done


@router.post("/logout", dependencies=CSRF)
def logout(request: Request, state: StateDep, db: DbDep) -> Response:
    """End the session on the server too: every session of this user issued until now dies,
    so a copied cookie is as logged out as the browser."""
    staff = _who(request, state, db)
    if staff is not None:
        users.revoke_sessions(db, staff.user)
        db.commit()
    response = _redirect(request, "/console/login", "You are logged out.")
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


# -------------------------------------------------------------------------------- queue
def _queue_filters(
    status: str = "", priority: str = "", reason: str = "", channel: str = "", mine: str = ""
) -> dict[str, str]:
    return {
        "status": status if status in views.STATUSES else "",
        "priority": priority if priority in ("1", "2", "3") else "",
        "reason": reason if reason in views.REASONS else "",
        "channel": channel if channel in views.CHANNELS else "",
        "mine": "1" if mine in ("1", "on", "true") else "",
    }


FiltersDep = Annotated[dict[str, str], Depends(_queue_filters)]


def _queue(
    db: Session, staff: Staff, filters: dict[str, str], hours: BusinessHours | None = None
) -> dict[str, Any]:
    found = desk.list_handoffs(
        db,
        staff.principal,
        statuses=[filters["status"]] if filters["status"] else None,
        priority=int(filters["priority"]) if filters["priority"] else None,
        reason=filters["reason"] or None,
        channel=filters["channel"] or None,
        assignee_id=staff.principal.user_id if filters["mine"] else None,
    )
    now = _now()
    rows = [views.queue_row(v, staff.principal.user_id, now, hours) for v in found]
    counts = {
        "total": len(rows),
        "waiting": sum(r["status"] == "waiting" for r in rows),
        "assigned": sum(r["status"] == "assigned" for r in rows),
        "overdue": sum(r["sla"]["overdue"] for r in rows),
    }
    return {"rows": rows, "counts": counts, "updated": now.strftime("%H:%M:%S UTC")}


@router.get("", response_class=HTMLResponse)
def queue_page(
    request: Request, services: ServicesDep, staff: StaffDep, db: DbDep, filters: FiltersDep
) -> Response:
    """The queue: open handoffs, most urgent first, refreshed live by queue.js."""
    values = {
        "nav": "queue",
        "filters": filters,
        "statuses": views.STATUSES,
        "reasons": views.REASONS,
        "channels": views.CHANNELS,
        **_queue(db, staff, filters, services.models.config().hours),
    }
    return _page(request, "queue.html", staff, values)


@router.get("/queue.json")
def queue_json(
    services: ServicesDep, staff: StaffJsonDep, db: DbDep, filters: FiltersDep
) -> JSONResponse:
    hours = services.models.config().hours
    return JSONResponse(_queue(db, staff, filters, hours), headers=HEADERS)


@router.post("/take-next", dependencies=CSRF)
def take_next(request: Request, services: ServicesDep, staff: StaffDep, db: DbDep) -> Response:
    try:
        handoff = desk.take_next(db, staff.principal)
    except TriageError as exc:
        db.rollback()
        return _redirect(request, "/console", str(exc), "error")
    if handoff is None:
        db.rollback()
        return _redirect(request, "/console", "Nothing is waiting right now.")
    db.commit()
    services.worker.wake()
    return _redirect(request, f"/console/handoffs/{handoff.id}", "You took this conversation.")


# ------------------------------------------------------------------------- conversation
def _names(db: Session) -> dict[int, str]:
    return {u.id or 0: u.name for u in db.exec(select(User)).all()}


def _transfer_targets(db: Session, staff: Staff, detail: desk.HandoffDetail) -> list[User]:
    stmt = (
        select(User)
        .where(User.is_active == True)  # noqa: E712 - SQL comparison
        .where(col(User.role).in_([Role.agent.value, Role.admin.value]))
        .order_by(col(User.name))
    )
    people = [u for u in db.exec(stmt).all() if u.id != staff.user.id]
    if detail.csm is not None and detail.csm.is_active and detail.csm.id != staff.user.id:
        people.append(detail.csm)
    return people


def _handoff_values(
    db: Session,
    staff: Staff,
    detail: desk.HandoffDetail,
    find: str = "",
    hours: BusinessHours | None = None,
) -> dict[str, Any]:
    """What the conversation page shows (``find``: a contact search to link the chat to)."""
    names = _names(db)
    h = detail.handoff
    live_recent = context.recent_contacts(db, detail.contact, detail.account)
    recent = live_recent or (h.context or {}).get("recent_contacts") or []
    now = _now()
    is_admin = access.is_admin(staff.principal)
    mine = h.status == "assigned" and (h.assignee_id == staff.user.id or is_admin)
    lines = [
        views.message_line(m, names, detail.undelivered, detail.taps) for m in detail.transcript
    ]
    find = find.strip()[:320]
    return {
        "nav": "queue",
        "h": h,
        "row": {
            "priority_label": f"P{h.priority}",
            "reasons": [{"code": r, "label": views.REASONS.get(r, r)} for r in h.reasons or []],
            "status_label": views.STATUSES.get(h.status, h.status),
            "channel": views.CHANNELS.get(detail.conversation.channel, detail.conversation.channel),
            "waiting": views.duration((now - h.waiting_since).total_seconds()),
            "sla": views.sla(h, now, hours),
            "intent": (h.intent or "").replace("_", " "),
        },
        "contact": detail.contact,
        "assignee": detail.assignee.name if detail.assignee else "",
        "lines": lines,
        "last_id": max((m["id"] or 0 for m in lines), default=0),
        "card": views.context_card(
            detail,
            [views.recent_line(r) for r in recent],
            now.date(),
            health_trends(db, [detail.account.id or 0], now.date()).get(detail.account.id or 0)
            if detail.account
            else None,
        ),
        "can_claim": h.status == "waiting",
        "can_work": mine,
        "can_reply": h.status == "waiting" or mine,
        "assignment_reason": h.assignment_reason or "",
        "viewers": collision.others(db, staff.principal, h.id or 0),
        "confirm_reply": None,
        "can_return": h.status == "waiting" or mine,
        "taken_by_other": h.status == "assigned" and not mine,
        "targets": _transfer_targets(db, staff, detail),
        "codes": desk.RESOLUTION_CODES,
        "max_reply": desk.MAX_REPLY_CHARS,
        "find": find,
        "matches": [
            views.contact_match(m, detail.contact.id)
            for m in desk.find_contacts(db, staff.principal, find)
        ]
        if find
        else [],
        "confirm_resolve": None,
    }


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
def handoff_page(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    find: str = "",
) -> Response:
    """A conversation: transcript, CS context card and the actions on its handoff
    (``find``: search contacts by email or name to link the chat to)."""
    try:
        detail = desk.get_handoff(db, staff.principal, handoff_id)
    except NotFound:
        return _not_found(request, staff, f"handoff {handoff_id}")
    config = services.models.config()
    values = _handoff_values(db, staff, detail, find, config.hours)
    values["correct_intents"] = sorted(services.models.config().intents)  # corrections
    values.update(composer(db, staff.principal, staff.user.name, detail, config))  # reply box
    return _page(request, "handoff.html", staff, values)


@router.get("/handoffs/{handoff_id}/updates.json")
def handoff_updates(handoff_id: PathId, staff: StaffJsonDep, db: DbDep, after: int = 0) -> Response:
    """New transcript lines after message ``after`` and the handoff's current state."""
    try:
        detail = desk.get_handoff(db, staff.principal, handoff_id)
    except NotFound:
        return JSONResponse({"detail": "not found"}, status_code=404, headers=HEADERS)
    names = _names(db)
    h = detail.handoff
    return JSONResponse(
        {
            "messages": [
                views.message_line(m, names, detail.undelivered, detail.taps)
                for m in detail.transcript
                if (m.id or 0) > after
            ],
            "failed": {str(k): v for k, v in detail.undelivered.items()},
            "handoff": {
                "status": h.status,
                "status_label": views.STATUSES.get(h.status, h.status),
                "assignee": detail.assignee.name if detail.assignee else "",
                "assignment_reason": h.assignment_reason or "",
                "version": h.version,
            },
        },
        headers=HEADERS,
    )


def _act(
    request: Request,
    services: ServicesDep,
    db: Session,
    staff: Staff,
    handoff_id: int,
    action: Any,
    done: str,
) -> Response:
    """Run one service call; commit and flash ``done``, or roll back and flash the error."""
    url = f"/console/handoffs/{handoff_id}"
    try:
        action()
    except NotFound:
        db.rollback()
        return _not_found(request, staff, f"handoff {handoff_id}")
    except desk.AssignedToOther:  # the caller asks to confirm
        raise
    except TriageError as exc:
        db.rollback()
        return _redirect(request, url, str(exc), "error")
    db.commit()
    services.worker.wake()
    return _redirect(request, url, done)


def _int(value: str) -> int | None:
    return bounded_int(value)


Text = Annotated[str, Form(max_length=desk.MAX_REPLY_CHARS + 100)]
Short = Annotated[str, Form(max_length=500)]


@router.post("/handoffs/{handoff_id}/claim", dependencies=CSRF)
def claim(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    version: Short = "",
) -> Response:
    def run() -> None:
        desk.claim(db, staff.principal, handoff_id, version=_int(version))

    return _act(request, services, db, staff, handoff_id, run, "You took this conversation.")


@router.post("/handoffs/{handoff_id}/release", dependencies=CSRF)
def release(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    reason: Short = "",
) -> Response:
    def run() -> None:
        desk.release(db, staff.principal, handoff_id, reason.strip() or None)

    return _act(request, services, db, staff, handoff_id, run, "Released back to the queue.")


@router.post("/handoffs/{handoff_id}/transfer", dependencies=CSRF)
def transfer(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    to_user_id: Short = "",
    reason: Short = "",
) -> Response:
    def run() -> None:
        target = _int(to_user_id)
        if target is None:
            raise InvalidInput("choose someone to transfer to")
        desk.transfer(db, staff.principal, handoff_id, target, reason.strip() or None)

    return _act(request, services, db, staff, handoff_id, run, "Transferred.")


@router.post("/handoffs/{handoff_id}/resolve", dependencies=CSRF)
def resolve(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    resolution_code: Short = "",
    ask_csat: Short = "",
    confirm: Short = "",
) -> Response:
    """Resolve; while the customer's last message has no reply, first ask to confirm (the
    page again, with the question and a form that confirms; nothing is written)."""
    try:
        desk.resolve(
            db,
            staff.principal,
            handoff_id,
            resolution_code,
            ask_csat=bool(ask_csat),
            confirm=bool(confirm),
            text_limits=services.models.config().text_limits,
        )
    except desk.Unanswered:
        db.rollback()
        detail = desk.get_handoff(db, staff.principal, handoff_id)
        values = _handoff_values(db, staff, detail)
        last = detail.last_customer_message
        values["confirm_resolve"] = {
            "code": resolution_code,
            "ask_csat": bool(ask_csat),
            "last_text": views.preview(detail.last_customer_text, 200),
            "last_at": last.created_at.strftime("%d %b %H:%M UTC") if last else "",
        }
        return _page(request, "handoff.html", staff, values, status=409)
    except NotFound:
        db.rollback()
        return _not_found(request, staff, f"handoff {handoff_id}")
    except TriageError as exc:
        db.rollback()
        return _redirect(request, f"/console/handoffs/{handoff_id}", str(exc), "error")
    db.commit()
    services.worker.wake()
    return _redirect(request, f"/console/handoffs/{handoff_id}", "Resolved.")


@router.post("/handoffs/{handoff_id}/return-to-bot", dependencies=CSRF)
def return_to_bot(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    reason: Short = "",
) -> Response:
    def run() -> None:
        desk.return_to_bot(db, staff.principal, handoff_id, reason.strip() or None)

    return _act(request, services, db, staff, handoff_id, run, "Handed back to the bot.")


@router.post("/handoffs/{handoff_id}/reply", dependencies=CSRF)
def reply(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    text: Text = "",
    canned_reply_id: Short = "",
    confirm: Short = "",
) -> Response:
    """Send a reply (``canned_reply_id``: the canned reply it started from, counted). To a
    handoff someone else is assigned, first ask to confirm (the page again, with the reply
    and a form that sends it with ``confirm=1``; nothing is written)."""
    config = services.models.config()

    def run() -> None:
        canned = _int(canned_reply_id) if canned_reply_id.strip() else None
        desk.reply(
            db,
            staff.principal,
            handoff_id,
            text,
            text_limits=config.text_limits,
            canned_reply_id=canned,
            confirm=bool(confirm),
        )

    try:
        return _act(request, services, db, staff, handoff_id, run, "Reply sent.")
    except desk.AssignedToOther:
        db.rollback()
        detail = desk.get_handoff(db, staff.principal, handoff_id)
        values = _handoff_values(db, staff, detail, "", config.hours)
        values.update(composer(db, staff.principal, staff.user.name, detail, config))
        values["confirm_reply"] = {
            "assignee": detail.assignee.name if detail.assignee else "someone else",
            "text": text,
            "canned_reply_id": canned_reply_id.strip(),
        }
        return _page(request, "handoff.html", staff, values, status=409)


@router.post("/handoffs/{handoff_id}/note", dependencies=CSRF)
def add_note(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    text: Text = "",
) -> Response:
    def run() -> None:
        desk.add_note(db, staff.principal, handoff_id, text)

    return _act(request, services, db, staff, handoff_id, run, "Note added.")


@router.post("/handoffs/{handoff_id}/link-contact", dependencies=CSRF)
def link_contact(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    contact_id: Short = "",
) -> Response:
    """Tie this chat to a known contact (chosen from the search on the page)."""
    url = f"/console/handoffs/{handoff_id}"
    target = _int(contact_id)
    try:
        if target is None:
            raise InvalidInput("choose a contact to link this chat to")
        contact = desk.link_to_contact(db, staff.principal, handoff_id, target)
    except desk.ContactNotFound:
        db.rollback()
        return _redirect(request, url, "That contact was not found.", "error")
    except NotFound:
        db.rollback()
        return _not_found(request, staff, f"handoff {handoff_id}")
    except TriageError as exc:
        db.rollback()
        return _redirect(request, url, str(exc), "error")
    db.commit()
    services.worker.wake()
    return _redirect(request, url, f"Linked to {contact.name or contact.email or 'the contact'}.")


# --------------------------------------------------------------------------- CSM view
ESCALATION_REASONS = {"vip_account", "at_risk_account"}


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, services: ServicesDep, staff: StaffDep, db: DbDep) -> Response:
    """A CSM's accounts (everyone's for admins and agents) and their VIP/at-risk escalations."""
    stmt = access.visible_accounts(select(Account), staff.principal)
    found = db.exec(stmt.order_by(col(Account.name))).all()
    open_counts = dict(
        db.exec(
            select(Handoff.account_id, func.count())
            .where(col(Handoff.status).in_(["waiting", "assigned"]))
            .group_by(col(Handoff.account_id))
        ).all()
    )
    names = _names(db)
    today = _now().date()
    trends = health_trends(db, [a.id or 0 for a in found], today)
    rows = [
        views.account_row(
            a,
            int(open_counts.get(a.id, 0)),
            names.get(a.csm_id or 0, ""),
            today,
            trends.get(a.id or 0),
        )
        for a in found
    ]
    rank = {"red": 0, "yellow": 1, "green": 2}
    rows.sort(key=lambda r: (rank.get(r["health_status"], 3), r["health_score"] or 0))
    now = _now()
    escalations = [
        views.queue_row(v, staff.user.id or 0, now, services.models.config().hours)
        for v in desk.list_handoffs(db, staff.principal)
        if ESCALATION_REASONS & set(v.handoff.reasons or [])
    ]
    scope = "All accounts" if access.sees_every_account(staff.principal) else "Your accounts"
    names_by_account = {a.id: a.name for a in found}
    cs_alerts = [
        {
            "id": a.id,
            "kind": a.kind,
            "title": a.title,
            "body": a.body,
            "account": names_by_account.get(a.account_id, ""),
            "at_label": a.created_at.strftime("%d %b %H:%M UTC"),
        }
        for a in alerts.open_alerts(db, staff.user.id or 0)
        if staff.user.role in (Role.admin.value, Role.csm.value)
    ]
    values = {
        "nav": "accounts",
        "rows": rows,
        "escalations": escalations,
        "scope": scope,
        "cs_alerts": cs_alerts,
    }
    return _page(request, "accounts.html", staff, values)


@router.post("/alerts/{alert_id}/ack", dependencies=CSRF)
def acknowledge_alert(alert_id: PathId, request: Request, staff: StaffDep, db: DbDep) -> Response:
    """Acknowledge a proactive CS alert (only the CSM it was sent to, or an admin)."""
    url = "/console/accounts"
    try:
        alerts.acknowledge_alert(db, staff.user.id or 0, alert_id)
    except NotFound:
        db.rollback()
        return _not_found(request, staff, f"alert {alert_id}")
    except TriageError as exc:
        db.rollback()
        return _redirect(request, url, str(exc), "error")
    db.commit()
    return _redirect(request, url, "Alert acknowledged.")
