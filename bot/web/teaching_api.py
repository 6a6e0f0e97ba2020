"""REST API v1 for teaching the bot from escalations (admins only): suggestions of intents
mined from unanswered questions, agents' corrections, and the served model's status.

Thin: authenticate, validate, call ``bot.teaching.Teacher`` or the ``handoff`` services,
serialize. The flow is described in ``bot/teaching.py`` and the README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.teaching import Lesson
from bot.web import errors
from bot.web.api import Id, PrincipalDep, SessionDep
from bot.web.deps import ServicesDep
from handoff import access, corrections, suggestion_views, suggestions
from handoff.models import SuggestionStatus
from handoff.suggestion_views import SuggestionView
from handoff.text import StorableInput

router = APIRouter(prefix="/api/v1", tags=["teaching"], responses=errors.responses(401))

ON_SUGGESTION = errors.responses(400, 403, 404, 409, 422)  # with a body


# ------------------------------------------------------------------------------ schemas
class QuoteOut(BaseModel):
    message_id: int
    conversation_id: int
    text: str
    created_at: datetime


class AskingAccountOut(BaseModel):
    id: int
    name: str
    arr: float | None


class SuggestionOut(BaseModel):
    id: int
    status: str = Field(description="open, training (retrain running), accepted, dismissed")
    label: str = Field(description="a guess from the cluster's top terms")
    terms: list[str]
    count: int = Field(description="customer messages in the cluster")
    score: float = Field(
        description="size x 0.5^(days since the newest / 14) x (1 + log10(1 + ARR / 10,000))"
    )
    first_seen: datetime | None
    last_seen: datetime | None
    accounts_affected: int
    accounts: list[AskingAccountOut]
    arr_total: float
    representatives: list[QuoteOut] = Field(description="up to 5, most representative first")
    candidate_answers: list[str] = Field(
        description="agents' replies in those conversations (deduplicated, up to 3)"
    )
    intent: str | None = Field(description="the intent it taught (set on accept)")
    error: str | None = Field(description="why the last accept was refused (the gate's reason)")
    result: dict[str, Any] = Field(
        description="after a retrain: intent, examples, before/after coverage and precision"
    )


class AcceptIn(StorableInput):
    """What to teach. A new intent needs an ``answer``; for an existing intent the examples
    are added (and a given answer replaces its answer)."""

    intent: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$", description="new or existing intent")
    answer: str | None = Field(
        None, max_length=4000, description="the answer template (same checks as the admin page)"
    )
    category: Literal["faq", "smalltalk"] = Field(
        "faq", description="a category the bot answers itself (new intents only)"
    )
    title: str | None = Field(None, min_length=1, max_length=20, description="button label")
    examples: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="the examples to learn (default: the suggestion's messages); e-mail "
        "addresses, phone numbers and long digit runs are masked either way",
    )


class FiguresOut(BaseModel):
    coverage: float | None
    precision: float | None


class AfterOut(FiguresOut):
    existing_coverage: float | None = Field(
        None, description="coverage of the intents the model had before"
    )


class LessonOut(BaseModel):
    suggestion_id: int
    intent: str | None
    label: str
    examples: int | None
    before: FiguresOut | None
    after: AfterOut | None
    finished_at: str | None


class RetrainOut(BaseModel):
    running: bool
    what: str = Field(description='"retrain", "suggestion N" or "correction N"')
    suggestion_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="why the last run kept the old model (null: it did not)")


class ModelOut(BaseModel):
    status: str = Field(description="ok, or missing (every message goes to a person)")
    backend: str | None
    trained_at: str | None
    intents: int
    examples: int | None
    coverage: float | None = Field(description="cross-validated share answered automatically")
    precision: float | None = Field(description="cross-validated precision of all answers")
    target_precision: float | None
    retrain: RetrainOut
    lessons: list[LessonOut] = Field(description="accepted suggestions, latest first")


class CorrectionOut(BaseModel):
    id: int
    message_id: int
    conversation_id: int
    text: str
    predicted_intent: str | None
    correct_intent: str
    status: str
    created_by_user_id: int | None
    reviewed_by_user_id: int | None
    created_at: datetime
    reviewed_at: datetime | None


# ----------------------------------------------------------------------------- mapping
def suggestion_out(v: SuggestionView) -> SuggestionOut:
    return SuggestionOut(
        id=v.id,
        status=v.status,
        label=v.label,
        terms=v.terms,
        count=v.count,
        score=v.score,
        first_seen=v.first_seen,
        last_seen=v.last_seen,
        accounts_affected=len(v.accounts),
        accounts=[AskingAccountOut(id=a.id, name=a.name, arr=a.arr) for a in v.accounts],
        arr_total=v.arr_total,
        representatives=[
            QuoteOut(
                message_id=q.message_id,
                conversation_id=q.conversation_id,
                text=q.text,
                created_at=q.created_at,
            )
            for q in v.representatives
        ],
        candidate_answers=v.candidate_answers,
        intent=v.intent,
        error=v.error,
        result=v.result,
    )


def _one(session: Session, suggestion_id: int) -> SuggestionOut:
    session.expire_all()
    return suggestion_out(suggestion_views.view(session, suggestions.get(session, suggestion_id)))


def model_status(services: Any, session: Session) -> ModelOut:
    """The served model, the retrain in progress or last finished, and what lessons did."""
    clf = services.models.classifier()
    meta: dict[str, Any] = dict(getattr(clf, "metadata_", {}) or {}) if clf else {}
    cv = meta.get("cv") or {}
    state = services.retrainer.state()
    lessons = []
    for s in suggestion_views.accepted(session):
        result = s.result or {}
        before, after = result.get("before"), result.get("after")
        lessons.append(
            LessonOut(
                suggestion_id=s.id or 0,
                intent=s.intent,
                label=s.label,
                examples=result.get("examples"),
                before=FiguresOut(**before) if isinstance(before, dict) else None,
                after=AfterOut(**after) if isinstance(after, dict) else None,
                finished_at=result.get("finished_at"),
            )
        )
    return ModelOut(
        status="ok" if clf is not None else "missing",
        backend=meta.get("backend") or services.settings.model_backend,
        trained_at=meta.get("trained_at"),
        intents=len(meta.get("intents") or []),
        examples=meta.get("n_examples"),
        coverage=cv.get("coverage"),
        precision=cv.get("precision"),
        target_precision=meta.get("target_precision"),
        retrain=RetrainOut(
            running=state.running,
            what=state.what,
            suggestion_id=state.suggestion_id,
            started_at=state.started_at,
            finished_at=state.finished_at,
            error=state.error,
        ),
        lessons=lessons,
    )


def _correction_out(view: corrections.CorrectionView) -> CorrectionOut:
    c = view.correction
    return CorrectionOut(
        id=c.id or 0,
        message_id=c.message_id,
        conversation_id=view.conversation_id,
        text=view.text,
        predicted_intent=c.predicted_intent,
        correct_intent=c.correct_intent,
        status=c.status,
        created_by_user_id=c.created_by_user_id,
        reviewed_by_user_id=c.reviewed_by_user_id,
        created_at=c.created_at,
        reviewed_at=c.reviewed_at,
    )


# ------------------------------------------------------------------------------ routes
@router.get(
    "/suggestions", response_model=list[SuggestionOut], responses=errors.responses(403, 422)
)
def list_suggestions(
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[list[SuggestionStatus] | None, Query()] = None,
) -> Any:
    """Clusters of questions the bot could not answer, best first (open and training by
    default). Refreshed when new messages arrived or the last refresh is a minute old."""
    access.require_admin(principal, "see suggestions")
    services.miner.ensure_fresh()
    statuses = [s.value for s in status] if status else None
    return [suggestion_out(v) for v in suggestion_views.list_views(session, statuses)]


@router.get(
    "/suggestions/{suggestion_id:int}",
    response_model=SuggestionOut,
    responses=errors.responses(403, 404, 422),
)
def get_suggestion(suggestion_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    access.require_admin(principal, "see suggestions")
    return _one(session, suggestion_id)


@router.post(
    "/suggestions/{suggestion_id:int}/accept",
    response_model=SuggestionOut,
    status_code=202,
    responses=ON_SUGGESTION,
)
def accept_suggestion(
    suggestion_id: Id,
    body: AcceptIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """Teach the suggestion as ``intent``: the FAQ is written, a retrain starts in the
    background and is swapped in when it passes the gate (``GET /api/v1/model`` says when);
    otherwise the FAQ is put back and the suggestion is open again with the reason."""
    lesson = Lesson(
        intent=body.intent,
        answer=body.answer,
        category=body.category,
        examples=body.examples,
        title=body.title,
    )
    services.teacher.accept(principal, suggestion_id, lesson)
    return _one(session, suggestion_id)


@router.post(
    "/suggestions/{suggestion_id:int}/dismiss",
    response_model=SuggestionOut,
    responses=errors.responses(403, 404, 409, 422),
)
def dismiss_suggestion(
    suggestion_id: Id, services: ServicesDep, session: SessionDep, principal: PrincipalDep
) -> Any:
    """Not worth teaching: its messages never come back in a suggestion."""
    services.teacher.dismiss(principal, suggestion_id)
    return _one(session, suggestion_id)


@router.get("/model", response_model=ModelOut, responses=errors.responses(403))
def get_model(services: ServicesDep, session: SessionDep, principal: PrincipalDep) -> Any:
    """The served model's figures, the retrain running or last finished, and per accepted
    suggestion the coverage and precision before and after."""
    access.require_admin(principal, "see the model's status")
    return model_status(services, session)


@router.get("/corrections", response_model=list[CorrectionOut], responses=errors.responses(403))
def list_corrections(session: SessionDep, principal: PrincipalDep) -> Any:
    """Agents' corrections waiting for an admin's review."""
    access.require_admin(principal, "review corrections")
    return [_correction_out(v) for v in corrections.pending(session)]


def _review(
    services: Any, session: Session, principal: Any, correction_id: int, approve: bool
) -> CorrectionOut:
    services.teacher.review_correction(principal, correction_id, approve)
    session.expire_all()
    return _correction_out(corrections.get(session, correction_id))


@router.post(
    "/corrections/{correction_id:int}/approve",
    response_model=CorrectionOut,
    responses=errors.responses(403, 404, 409, 422),
)
def approve_correction(
    correction_id: Id, services: ServicesDep, session: SessionDep, principal: PrincipalDep
) -> Any:
    """The message becomes an example of the corrected intent; a gated retrain starts."""
    return _review(services, session, principal, correction_id, True)


@router.post(
    "/corrections/{correction_id:int}/reject",
    response_model=CorrectionOut,
    responses=errors.responses(403, 404, 409, 422),
)
def reject_correction(
    correction_id: Id, services: ServicesDep, session: SessionDep, principal: PrincipalDep
) -> Any:
    return _review(services, session, principal, correction_id, False)
