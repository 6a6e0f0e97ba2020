"""The console's side of teaching the bot: an agent's correction of one message (from the
conversation page), and the admin page's suggestions, corrections and lessons.

Each POST checks the CSRF token, calls ``bot.teaching.Teacher`` or ``handoff.corrections``,
then redirects with a flash message (the flow is described in ``bot/teaching.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from bot.teaching import Lesson
from bot.web.console import CSRF, DbDep, Staff, StaffDep, _page, _redirect
from bot.web.deps import ServicesDep
from bot.web.forms import PathId, bounded_int, refuse_unstorable_input
from handoff import access, corrections, suggestion_views
from handoff.errors import TriageError

ADMIN_TEACHING = "/console/admin#teaching"

router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)


def _forbidden(request: Request, staff: Staff) -> Response:
    values = {"nav": "", "what": "the admin page"}
    return _page(request, "forbidden.html", staff, values, status=403)


def teaching_values(services: Any, db: Session) -> dict[str, Any]:
    """What the admin page shows of teaching: open suggestions, pending corrections, lessons.

    Suggestions are as of the last refresh (``GET /api/v1/suggestions`` or the *Refresh*
    button): the page itself does not cluster.
    """
    return {
        "suggestions": suggestion_views.list_views(db),
        "corrections": corrections.pending(db),
        "lessons": suggestion_views.accepted(db),
        "answered_intents": sorted(
            name
            for name, info in services.models.config().intents.items()
            if info.answer is not None
        ),
    }


# ------------------------------------------------------------------ an agent's correction
@router.post("/messages/{message_id}/correction", dependencies=CSRF)
def correct_message(
    message_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    intent: Annotated[str, Form(max_length=100)] = "",
    handoff_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """ "The bot thought X, it was Y": kept for an admin's review."""
    back_id = bounded_int(handoff_id)
    back = f"/console/handoffs/{back_id}" if back_id else "/console"
    try:
        corrections.create(
            db, staff.principal, message_id, intent, services.models.config().intents
        )
    except TriageError as exc:
        db.rollback()
        return _redirect(request, back, f"Not saved: {exc}", "error")
    db.commit()
    return _redirect(request, back, f"Thanks: an admin will review it as {intent}.")


# -------------------------------------------------------------------------- admin actions
def _act(request: Request, action: Any, done: str) -> Response:
    try:
        action()
    except TriageError as exc:  # NotFound, Conflict, InvalidInput: nothing changed, say why
        return _redirect(request, ADMIN_TEACHING, f"Not done: {exc}", "error")
    return _redirect(request, ADMIN_TEACHING, done)


@router.post("/admin/suggestions/refresh", dependencies=CSRF)
def refresh_suggestions(request: Request, services: ServicesDep, staff: StaffDep) -> Response:
    if not access.is_admin(staff.principal):
        return _forbidden(request, staff)
    return _act(request, services.miner.refresh_now, "Suggestions refreshed.")


@router.post("/admin/suggestions/{suggestion_id}/accept", dependencies=CSRF)
def accept_suggestion(
    suggestion_id: PathId,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    intent: Annotated[str, Form(max_length=64)] = "",
    answer: Annotated[str, Form(max_length=4000)] = "",
    examples: Annotated[str, Form(max_length=60_000)] = "",
) -> Response:
    """Teach it: the examples (one per line; the admin may drop or edit lines) under the
    intent, with the answer; the gated retrain runs in the background."""
    if not access.is_admin(staff.principal):
        return _forbidden(request, staff)
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    lesson = Lesson(
        intent=intent.strip(),
        answer=answer or None,
        examples=lines or None,
    )
    return _act(
        request,
        lambda: services.teacher.accept(staff.principal, suggestion_id, lesson),
        f"Teaching {intent.strip()}: retraining in the background.",
    )


@router.post("/admin/suggestions/{suggestion_id}/dismiss", dependencies=CSRF)
def dismiss_suggestion(
    suggestion_id: PathId, request: Request, services: ServicesDep, staff: StaffDep
) -> Response:
    if not access.is_admin(staff.principal):
        return _forbidden(request, staff)
    return _act(
        request,
        lambda: services.teacher.dismiss(staff.principal, suggestion_id),
        "Suggestion dismissed.",
    )


@router.post("/admin/corrections/{correction_id}/{verdict}", dependencies=CSRF)
def review_correction(
    correction_id: PathId,
    verdict: str,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
) -> Response:
    if not access.is_admin(staff.principal):
        return _forbidden(request, staff)
    if verdict not in ("approve", "reject"):
        return _redirect(request, ADMIN_TEACHING, "Unknown action.", "error")
    approve = verdict == "approve"
    done = "Correction approved: retraining in the background." if approve else "Rejected."
    return _act(
        request,
        lambda: services.teacher.review_correction(staff.principal, correction_id, approve),
        done,
    )
