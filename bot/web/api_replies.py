"""REST API v1: canned replies, WhatsApp templates and the 24-hour window, business hours.

Thin like ``bot.web.api``: validate, call one ``handoff`` service (which enforces who may do
what), commit, serialize. Canned replies: any staff member lists the shared ones and their
own; agents manage their own personal replies, admins the shared ones. Business hours: every
staff member reads them, admins replace them (validated, written to ``HOURS_PATH``).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from bot import canned_replies
from bot.web import errors
from bot.web.api import MAX_INT, Id, MessageOut, PrincipalDep, SessionDep, Storable
from bot.web.deps import ServicesDep
from handoff import access, canned, desk, template_replies
from handoff.errors import InvalidInput
from handoff.hours import DAYS, BusinessHours, is_open, next_open
from handoff.hours_edit import save_hours
from handoff.models import CannedReply, utcnow
from handoff.text import StorableInput

router = APIRouter(prefix="/api/v1", tags=["api"], responses=errors.responses(401))


# ------------------------------------------------------------------------ canned replies
class CannedReplyOut(BaseModel):
    id: int
    title: str
    body: str = Field(description="a Jinja2 template with the conversation's variables")
    shared: bool = Field(description="true: everyone's (admins edit it); false: the caller's own")
    uses: int = Field(description="replies sent that started from it")
    created_at: datetime
    updated_at: datetime


class CannedReplyIn(StorableInput):
    title: str = Field(min_length=1, max_length=canned.MAX_TITLE)
    body: str = Field(min_length=1, max_length=canned.MAX_BODY)
    shared: bool = Field(False, description="a shared reply (admins only)")


class CannedReplyPatch(StorableInput):
    title: str | None = Field(None, min_length=1, max_length=canned.MAX_TITLE)
    body: str | None = Field(None, min_length=1, max_length=canned.MAX_BODY)


class RenderIn(StorableInput):
    handoff_id: int = Field(ge=1, le=MAX_INT)


class RenderOut(BaseModel):
    id: int
    text: str = Field(description="the reply as this conversation's customer would read it")


def _canned_out(reply: CannedReply) -> CannedReplyOut:
    return CannedReplyOut(
        id=reply.id or 0,
        title=reply.title,
        body=reply.body,
        shared=reply.owner_user_id is None,
        uses=reply.uses,
        created_at=reply.created_at,
        updated_at=reply.updated_at,
    )


def _links(services: Any) -> dict[str, str]:
    return dict(services.models.config().links)


@router.get(
    "/canned-replies", response_model=list[CannedReplyOut], responses=errors.responses(403, 422)
)
def list_canned_replies(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[Storable, Query(max_length=200)] = "",
) -> Any:
    """Shared canned replies and the caller's own, matching every word of ``q``."""
    return [_canned_out(r) for r in canned.list_replies(session, principal, q)]


@router.post(
    "/canned-replies",
    response_model=CannedReplyOut,
    status_code=201,
    responses=errors.responses(400, 403, 422),
)
def create_canned_reply(
    body: CannedReplyIn, services: ServicesDep, session: SessionDep, principal: PrincipalDep
) -> Any:
    """A personal canned reply, or a shared one (admins)."""
    reply = canned.create_reply(
        session,
        principal,
        body.title,
        body.body,
        shared=body.shared,
        check=canned_replies.body_check(_links(services)),
    )
    session.commit()
    return _canned_out(reply)


@router.get(
    "/canned-replies/{reply_id:int}",
    response_model=CannedReplyOut,
    responses=errors.responses(403, 404, 422),
)
def get_canned_reply(reply_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    return _canned_out(canned.get_reply(session, principal, reply_id))


@router.patch(
    "/canned-replies/{reply_id:int}",
    response_model=CannedReplyOut,
    responses=errors.responses(400, 403, 404, 422),
)
def update_canned_reply(
    reply_id: Id,
    body: CannedReplyPatch,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    reply = canned.update_reply(
        session,
        principal,
        reply_id,
        title=body.title,
        body=body.body,
        check=canned_replies.body_check(_links(services)),
    )
    session.commit()
    return _canned_out(reply)


@router.delete(
    "/canned-replies/{reply_id:int}",
    status_code=204,
    response_class=Response,
    responses=errors.responses(403, 404, 422),
)
def delete_canned_reply(reply_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    canned.delete_reply(session, principal, reply_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/canned-replies/{reply_id:int}/render",
    response_model=RenderOut,
    responses=errors.responses(400, 403, 404, 422),
)
def render_canned_reply(
    reply_id: Id,
    body: RenderIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """The canned reply filled in with a handoff's variables (customer, account, CSM, links).
    Send it with ``POST /handoffs/{id}/reply`` and ``canned_reply_id`` to count the use."""
    reply = canned.get_reply(session, principal, reply_id)
    detail = desk.get_handoff(session, principal, body.handoff_id)
    values = canned_replies.variables(detail, _links(services), principal.name)
    try:
        text = canned_replies.render(reply.body, values)
    except ValueError as exc:
        raise InvalidInput(f"body: {exc}") from exc
    return RenderOut(id=reply_id, text=text)


# ------------------------------------------------------------------- WhatsApp templates
class TemplateOut(BaseModel):
    name: str
    language: str
    parameters: list[str] = Field(description="body parameter names, in order ({{1}}, {{2}}…)")
    preview: str
    description: str


class WindowOut(BaseModel):
    channel: str
    open: bool = Field(description="free-form replies are allowed (WhatsApp: within 24 h)")
    closes_at: datetime | None = Field(description="WhatsApp only: last customer message + 24 h")
    seconds_left: float | None


class TemplateReplyIn(StorableInput):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=1, max_length=20)
    parameters: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=20
    )


@router.get("/whatsapp-templates", response_model=list[TemplateOut], responses=errors.responses())
def list_templates(services: ServicesDep, principal: PrincipalDep) -> Any:
    """The approved templates agents may send (``whatsapp_templates.yaml``)."""
    access.require_staff(principal)
    catalog = services.models.config().whatsapp_templates
    return [TemplateOut.model_validate(t, from_attributes=True) for t in catalog.templates]


@router.get(
    "/handoffs/{handoff_id:int}/window",
    response_model=WindowOut,
    responses=errors.responses(404, 422),
)
def reply_window(handoff_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    """Whether a free-form reply can reach the customer now (WhatsApp's 24-hour window)."""
    detail = desk.get_handoff(session, principal, handoff_id)
    channel = detail.conversation.channel
    if channel != template_replies.WHATSAPP:
        return WindowOut(channel=channel, open=True, closes_at=None, seconds_left=None)
    found = template_replies.window(session, detail.conversation)
    now = utcnow()
    return WindowOut(
        channel=channel,
        open=found.open(now),
        closes_at=found.closes_at,
        seconds_left=found.seconds_left(now),
    )


@router.post(
    "/handoffs/{handoff_id:int}/template-reply",
    response_model=MessageOut,
    status_code=201,
    responses=errors.responses(400, 403, 404, 409, 422),
)
def template_reply(
    handoff_id: Id,
    body: TemplateReplyIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """Send an approved WhatsApp template with its parameters (e.g. after the 24-hour
    window closed); tracked like any reply. A wrong parameter count is a 422 naming it."""
    message = template_replies.send_template(
        session,
        principal,
        handoff_id,
        services.models.config().whatsapp_templates,
        name=body.name,
        language=body.language,
        parameters=list(body.parameters),
    )
    session.commit()
    services.worker.wake()
    return MessageOut.model_validate(message, from_attributes=True)


# ------------------------------------------------------------------------- business hours
class HolidayIn(StorableInput):
    start: date
    end: date | None = Field(None, description="inclusive; none: one day")
    name: str = Field("", max_length=100)


class WeeklyIn(StorableInput):
    """Open ranges per day, ``HH:MM-HH:MM`` (``24:00`` may end a day); a day not given is
    closed. With no ranges at all the team is open 24/7."""

    mon: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    tue: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    wed: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    thu: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    fri: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    sat: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)
    sun: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=8)


class HoursIn(StorableInput):
    timezone: str = Field("UTC", min_length=1, max_length=64, description="e.g. Europe/Berlin")
    weekly: WeeklyIn = Field(default_factory=WeeklyIn)
    holidays: list[HolidayIn] = Field(default_factory=list, max_length=1000)
    sla_always: list[Annotated[int, Field(ge=1, le=9)]] = Field(
        default_factory=lambda: [1],
        max_length=9,
        description="priorities whose SLA clock runs 24/7; the others count business hours",
    )


class HoursOut(HoursIn):
    always_open: bool = Field(description="no weekly hours: open 24/7")
    open_now: bool
    next_open: datetime


def _hours_out(cfg: BusinessHours) -> HoursOut:
    now = utcnow()
    return HoursOut(
        timezone=cfg.timezone,
        weekly=WeeklyIn(**{d: list(cfg.weekly.get(d, [])) for d in DAYS}),
        holidays=[HolidayIn(start=h.start, end=h.end, name=h.name) for h in cfg.holidays],
        sla_always=sorted(p for p, clock in cfg.sla_clock.items() if clock == "always"),
        always_open=cfg.always_open,
        open_now=is_open(now, cfg),
        next_open=next_open(now, cfg),
    )


@router.get("/hours", response_model=HoursOut, responses=errors.responses(403))
def get_hours(services: ServicesDep, principal: PrincipalDep) -> Any:
    """Business hours and holidays: the clock SLAs of "business hours" priorities run on."""
    access.require_staff(principal)
    return _hours_out(services.models.config().hours)


@router.put("/hours", response_model=HoursOut, responses=errors.responses(400, 403, 422))
def put_hours(body: HoursIn, services: ServicesDep, principal: PrincipalDep) -> Any:
    """Replace the business hours (admins). Invalid hours, overlapping ranges or holidays
    are a 422 naming the field; nothing is saved then."""
    access.require_admin(principal, "change business hours")
    data = body.model_dump(mode="json", exclude={"sla_always", "weekly"})
    data["weekly"] = {d: r for d, r in body.weekly.model_dump().items() if r}
    data["sla_clock"] = {p: "always" for p in body.sla_always}
    cfg = save_hours(FilePath(services.settings.hours_path), data)
    services.models.load()
    return _hours_out(cfg)
