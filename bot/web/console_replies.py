"""The console's reply tools: the canned replies page and sending a WhatsApp template.

What the reply box offers is ``bot.web.console_composer``'s. The routes check the CSRF
token, call one service (``handoff.canned``, ``handoff.template_replies``), commit and
redirect with a flash message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from bot import canned_replies
from bot.web.console import CSRF, DbDep, StaffDep, _not_found, _page, _redirect
from bot.web.deps import ServicesDep
from bot.web.forms import PathId, refuse_unstorable_input
from handoff import access, canned, template_replies
from handoff.errors import NotFound, TriageError

CANNED_URL = "/console/canned-replies"

router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)


@router.post("/handoffs/{handoff_id}/template-reply", dependencies=CSRF)
async def template_reply(
    handoff_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
) -> Response:
    """Send an approved WhatsApp template with the parameters typed into its fields."""
    form = await request.form()
    name, language = str(form.get("name") or ""), str(form.get("language") or "")
    parameters = [str(v) for v in form.getlist("parameter")]
    url = f"/console/handoffs/{handoff_id}"
    try:
        template_replies.send_template(
            db,
            staff.principal,
            handoff_id,
            services.models.config().whatsapp_templates,
            name=name[:512],
            language=language[:20],
            parameters=[p[:2000] for p in parameters[:20]],
        )
    except NotFound:
        db.rollback()
        return _not_found(request, staff, f"handoff {handoff_id}")
    except TriageError as exc:
        db.rollback()
        return _redirect(request, url, f"Not sent: {exc}", "error")
    db.commit()
    services.worker.wake()
    return _redirect(request, url, "Template sent.")


# ---------------------------------------------------------------------- canned replies
Title = Annotated[str, Form(max_length=canned.MAX_TITLE + 50)]
Body = Annotated[str, Form(max_length=canned.MAX_BODY + 100)]


@router.get("/canned-replies", response_class=HTMLResponse)
def canned_page(request: Request, services: ServicesDep, staff: StaffDep, db: DbDep) -> Response:
    """Shared canned replies and the agent's own, with forms to add, change and delete."""
    replies = canned.list_replies(db, staff.principal)
    values = {
        "nav": "canned",
        "replies": [
            {
                "id": r.id,
                "title": r.title,
                "body": r.body,
                "shared": r.owner_user_id is None,
                "uses": r.uses,
                "editable": access.may_edit_canned_reply(staff.principal, r.owner_user_id),
            }
            for r in replies
        ],
        "is_admin": access.is_admin(staff.principal),
        "variables": canned_replies.names(dict(services.models.config().links)),
    }
    return _page(request, "canned.html", staff, values)


def _run(request: Request, db: Session, action: Any, done: str) -> Response:
    try:
        action()
    except TriageError as exc:
        db.rollback()
        return _redirect(request, CANNED_URL, f"Not saved: {exc}", "error")
    db.commit()
    return _redirect(request, CANNED_URL, done)


@router.post("/canned-replies", dependencies=CSRF)
def create_canned(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    title: Title = "",
    body: Body = "",
    shared: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    check = canned_replies.body_check(dict(services.models.config().links))

    def run() -> None:
        canned.create_reply(db, staff.principal, title, body, shared=bool(shared), check=check)

    return _run(request, db, run, "Canned reply saved.")


@router.post("/canned-replies/{reply_id}", dependencies=CSRF)
def update_canned(
    reply_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    title: Title = "",
    body: Body = "",
) -> Response:
    check = canned_replies.body_check(dict(services.models.config().links))

    def run() -> None:
        canned.update_reply(db, staff.principal, reply_id, title=title, body=body, check=check)

    return _run(request, db, run, "Canned reply saved.")


@router.post("/canned-replies/{reply_id}/delete", dependencies=CSRF)
def delete_canned(reply_id: PathId, request: Request, staff: StaffDep, db: DbDep) -> Response:
    return _run(request, db, lambda: canned.delete_reply(db, staff.principal, reply_id), "Deleted.")
