"""The console's admin page (admins only; others get a 403 page): users, FAQ answers,
escalation thresholds and the intent model.

Each POST checks the CSRF token (``console.CSRF``), calls one service (``handoff.users``,
``classifier.faq_edit``, ``handoff.policy_edit``, ``bot.retrain``), then redirects with a
flash message. FAQ and policy edits write the files named by the settings (``faq_path``,
``policy_path``) atomically and reload them in this process (``ModelHolder.load``); with
several instances, each must be reloaded (or restarted) to pick the change up.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from bot.retrain import Retrainer
from bot.template_limits import SAMPLE_VARIABLES as SAMPLE
from bot.template_limits import check_limits
from bot.web.console import CSRF, HEADERS, DbDep, Staff, StaffDep, _page, _redirect, templates
from bot.web.console_assignment import assignment_values
from bot.web.console_teaching import teaching_values
from bot.web.deps import ServicesDep
from bot.web.forms import PathId, refuse_unstorable_input
from classifier import model_is_current
from classifier.faq import FaqError
from classifier.faq_edit import set_answer
from handoff import access, users
from handoff.errors import InvalidInput, TriageError
from handoff.hours_edit import as_form
from handoff.models import Role, User
from handoff.policy_edit import Thresholds, clean_terms, save_strategic_terms, save_thresholds

logger = logging.getLogger(__name__)

ADMIN_URL = "/console/admin"
__all__ = ["SAMPLE", "check_limits", "router"]


router = APIRouter(
    prefix="/console",
    tags=["console"],
    include_in_schema=False,
    dependencies=[Depends(refuse_unstorable_input)],
)

Short = Annotated[str, Form(max_length=500)]


def _is_admin(staff: Staff) -> bool:
    return access.is_admin(staff.principal)


def _forbidden(request: Request, staff: Staff) -> HTMLResponse:
    values = {"nav": "", "what": "the admin page"}
    return _page(request, "forbidden.html", staff, values, status=403)


def _model(services: Any, retrainer: Retrainer) -> dict[str, Any]:
    settings = services.settings
    status = services.models.status()
    clf = services.models.classifier()
    meta: dict[str, Any] = dict(getattr(clf, "metadata_", {}) or {}) if clf else {}
    cv = meta.get("cv") or {}

    def pct(value: Any) -> str:
        return f"{float(value) * 100:.1f}%" if isinstance(value, int | float) else "—"

    try:
        stale = model_is_current(settings.faq_path, settings.model_path, settings.model_backend)
    except (FaqError, OSError, ValueError) as exc:
        stale = str(exc)
    state = retrainer.state()
    now = datetime.now(UTC)
    elapsed = (now - state.started_at) if state.running and state.started_at else None
    took = (
        state.finished_at - state.started_at
        if state.finished_at and state.started_at and not state.running
        else None
    )
    return {
        "status": status.get("status"),
        "error": status.get("error"),
        "backend": meta.get("backend") or settings.model_backend,
        "trained_at": meta.get("trained_at") or "—",
        "n_examples": meta.get("n_examples", "—"),
        "intents": status.get("intents", "—"),
        "accuracy": pct(cv.get("accuracy")),
        "coverage": pct(cv.get("coverage")),
        "precision": pct(cv.get("precision")),
        "threshold": f"{meta['threshold']:.3f}" if "threshold" in meta else "—",
        "unknown_refused": pct(cv.get("unknown_refused")),
        "oos_prior": pct(cv.get("oos_prior")),
        "safety": meta.get("faq_safety") or {},
        "stale": stale,
        "training": state.running,
        "train_error": state.error,
        "train_finished": state.finished_at.strftime("%H:%M:%S UTC") if state.finished_at else "",
        "elapsed": _seconds(elapsed),
        "last_duration": _seconds(took),
    }


def _seconds(span: timedelta | None) -> str:
    return f"{span.total_seconds():.0f} s" if span is not None else ""


def _admin_values(request: Request, services: Any, db: Any, **extra: Any) -> dict[str, Any]:
    config = services.models.config()
    policy = config.policy
    intents = [
        {"name": name, "category": info.category, "answer": (info.answer or "").rstrip("\n")}
        for name, info in config.intents.items()
        if info.answer is not None
    ]
    values: dict[str, Any] = {
        "nav": "admin",
        "people": users.list_users(db),
        "roles": [r.value for r in Role],
        "intents": intents,
        "thresholds": Thresholds.of(policy),
        "strategic_terms": list(policy.strategic_terms),
        "hours": as_form(config.hours),
        "model": _model(services, request.app.state.retrainer),
        "faq_file": Path(services.settings.faq_path).name,
        "token": None,
        "faq_error": None,
        **teaching_values(services, db),
        **assignment_values(db),
    }
    values.update(extra)
    return values


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, services: ServicesDep, staff: StaffDep, db: DbDep) -> Response:
    """Users, FAQ answers, escalation thresholds and the model's status."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    return _page(request, "admin.html", staff, _admin_values(request, services, db))


def _run(request: Request, db: Any, action: Any, done: str, anchor: str) -> Response:
    try:
        action()
    except TriageError as exc:  # NotFound, InvalidInput: nothing changed, say why
        db.rollback()
        return _redirect(request, f"{ADMIN_URL}#{anchor}", str(exc), "error")
    db.commit()
    return _redirect(request, f"{ADMIN_URL}#{anchor}", done)


# ------------------------------------------------------------------------------- users
@router.post("/admin/users", dependencies=CSRF)
def create_user(
    request: Request,
    staff: StaffDep,
    db: DbDep,
    email: Annotated[str, Form(max_length=320)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Short = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    if not _is_admin(staff):
        return _forbidden(request, staff)
    email, name = email.strip(), " ".join(name.split())

    def run() -> None:
        if "@" not in email or not name or not password:
            raise InvalidInput("a new user needs an email address, a name and a password")
        users.create_user(db, email, name, role, password)

    return _run(request, db, run, f"User {email} created.", "users")


@router.post("/admin/users/{user_id}/role", dependencies=CSRF)
def change_role(
    user_id: PathId, request: Request, staff: StaffDep, db: DbDep, role: Short = ""
) -> Response:
    if not _is_admin(staff):
        return _forbidden(request, staff)
    return _run(
        request, db, lambda: users.set_role(db, user_id, role), f"Role changed to {role}.", "users"
    )


@router.post("/admin/users/{user_id}/active", dependencies=CSRF)
def change_active(
    user_id: PathId, request: Request, staff: StaffDep, db: DbDep, active: Short = ""
) -> Response:
    if not _is_admin(staff):
        return _forbidden(request, staff)
    on = active == "1"
    done = "User reactivated." if on else "User deactivated: they can no longer log in."
    return _run(request, db, lambda: users.set_active(db, user_id, on), done, "users")


@router.post("/admin/users/{user_id}/token", dependencies=CSRF)
def issue_token(
    user_id: PathId, request: Request, services: ServicesDep, staff: StaffDep, db: DbDep
) -> Response:
    """A new API token, shown once on this response (never in a cookie or a URL)."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    user = db.get(User, user_id)
    if user is None or not user.is_active:
        return _redirect(request, f"{ADMIN_URL}#users", "No such active user.", "error")
    token = users.issue_api_token(db, user)
    db.commit()
    shown = {"email": user.email, "value": token}
    return _page(request, "admin.html", staff, _admin_values(request, services, db, token=shown))


# ---------------------------------------------------------------------------- FAQ, policy
@router.post("/admin/faq/{intent}", dependencies=CSRF)
def edit_answer(
    intent: str,
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    answer: Annotated[str, Form(max_length=8000)] = "",
) -> Response:
    """Validate the answer template, write the FAQ file atomically, reload it."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    variables = {**services.models.config().links, **SAMPLE}
    try:
        check_limits(answer, variables)
        set_answer(Path(services.settings.faq_path), intent, answer, variables)
    except (FaqError, ValueError) as exc:
        error = {"intent": intent, "message": f"Not saved: {exc}", "answer": answer}
        values = _admin_values(request, services, db, faq_error=error)
        return _page(request, "admin.html", staff, values, status=422)
    services.models.load()
    return _redirect(request, f"{ADMIN_URL}#faq-{intent}", f"Answer of {intent} saved.")


def _number(text: str, what: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be a number") from None


@router.post("/admin/policy", dependencies=CSRF)
def edit_policy(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    vip_tiers: Short = "",
    vip_min_arr: Short = "",
    vip_qbr_within_days: Short = "",
    vip_renewal_within_days: Short = "",
    at_risk_max_health_score: Short = "",
    min_confidence: Short = "",
) -> Response:
    """Validate the thresholds with the policy model, write policy.yaml atomically, reload."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    try:
        thresholds = Thresholds(
            vip_tiers=[t.strip().lower() for t in vip_tiers.split(",") if t.strip()],
            vip_min_arr=_number(vip_min_arr, "VIP minimum ARR", float),
            vip_qbr_within_days=_number(vip_qbr_within_days, "QBR within days", int),
            vip_renewal_within_days=_number(vip_renewal_within_days, "renewal within days", int),
            at_risk_max_health_score=_number(at_risk_max_health_score, "at-risk health score", int),
            min_confidence=_number(min_confidence, "minimum confidence", float),
        )
        save_thresholds(Path(services.settings.policy_path), thresholds)
    except InvalidInput as exc:
        return _redirect(request, f"{ADMIN_URL}#policy", f"Not saved: {exc}", "error")
    services.models.load()
    return _redirect(request, f"{ADMIN_URL}#policy", "Escalation thresholds saved.")


@router.post("/admin/strategic-terms", dependencies=CSRF)
def edit_strategic_terms(
    request: Request,
    services: ServicesDep,
    staff: StaffDep,
    db: DbDep,
    terms: Annotated[str, Form(max_length=60_000)] = "",
) -> Response:
    """One term per line; a message naming any of them always reaches a person."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    try:
        cleaned = clean_terms(terms)
        save_strategic_terms(Path(services.settings.policy_path), cleaned)
    except InvalidInput as exc:
        return _redirect(request, f"{ADMIN_URL}#terms", f"Not saved: {exc}", "error")
    services.models.load()
    return _redirect(request, f"{ADMIN_URL}#terms", f"Strategic terms saved ({len(cleaned)}).")


@router.get("/admin/model/card", response_class=HTMLResponse)
def model_card(request: Request, services: ServicesDep, staff: StaffDep) -> Response:
    """The model card alone: the admin page fetches it while a retrain runs."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    values = {"model": _model(services, request.app.state.retrainer), "csrf": staff.session.csrf}
    return templates.TemplateResponse(request, "console/_admin_model.html", values, headers=HEADERS)


@router.post("/admin/model/retrain", dependencies=CSRF)
def retrain(request: Request, staff: StaffDep) -> Response:
    """Start retraining in the background (one at a time); the page shows its progress."""
    if not _is_admin(staff):
        return _forbidden(request, staff)
    if not request.app.state.retrainer.start():
        return _redirect(request, f"{ADMIN_URL}#model", "A retrain is already running.", "error")
    return _redirect(request, f"{ADMIN_URL}#model", "Retraining started.")
