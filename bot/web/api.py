"""REST API v1 for the queue, accounts and contacts (token auth: ``Authorization: Bearer``).

Thin: authenticate, validate, call the ``handoff`` services (which enforce authorization),
commit, serialize. Tokens are issued with ``triagebot users token EMAIL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from sqlmodel import Session

from bot.web import errors
from bot.web.bearer import principal_of
from bot.web.deps import ServicesDep
from handoff import access, accounts, activity, contacts, desk, privacy, users
from handoff.errors import InvalidInput
from handoff.models import Account, HandoffStatus, Message
from handoff.text import StorableInput, refuse_unstorable

router = APIRouter(prefix="/api/v1", tags=["api"], responses=errors.responses(401))

MAX_INT = 2**31 - 1  # ids and counters are 32-bit integer columns
Id = Annotated[int, Path(ge=1, le=MAX_INT)]
Storable = Annotated[str, AfterValidator(refuse_unstorable)]  # no NUL: PostgreSQL refuses it
ExternalId = Annotated[Storable, Path(min_length=1, max_length=128)]  # an account's CRM id
ON_HANDOFF = errors.responses(400, 403, 404, 409, 422)  # an action on a handoff, with a body


def _session(services: ServicesDep) -> Iterator[Session]:
    with Session(services.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


_bearer = HTTPBearer(
    auto_error=False, description="an API token (`tb_...`): `triagebot users token EMAIL`"
)


def _principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> desk.Principal:
    checked = principal_of(request.state)  # the BearerAuth middleware checked it before the body
    if checked is not None:
        return checked
    token = credentials.credentials.strip() if credentials else ""
    user = users.user_for_token(session, token) if token else None
    if user is None:
        raise HTTPException(
            401, "missing or invalid API token", headers={"WWW-Authenticate": "Bearer"}
        )
    return desk.Principal.of(user)


PrincipalDep = Annotated[desk.Principal, Depends(_principal)]


# ------------------------------------------------------------------------------ schemas
class HandoffOut(BaseModel):
    id: int
    status: str
    priority: int
    reasons: list[str]
    intent: str | None
    channel: str | None = None
    contact_name: str | None = None
    account_name: str | None = None
    account_tier: str | None = None
    assignee_id: int | None
    assignee_name: str | None = None
    assignment_reason: str | None = Field(
        None,
        description='why it went to its assignee ("owner of Acme", "fewest open (2 of 5)", '
        '"claimed"); null while unassigned',
    )
    version: int
    created_at: datetime
    waiting_since: datetime
    sla_due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution_code: str | None
    last_customer_text: str | None = None


class MessageOut(BaseModel):
    id: int
    direction: str
    author: str
    author_user_id: int | None
    kind: str
    text: str
    intent: str | None
    confidence: float | None
    created_at: datetime
    undelivered: str | None = Field(
        None,
        description="why this reply never reached the customer (null when it did or is on its way)",
    )
    activity: str | None = Field(
        None,
        description="for a button tap or a command, what the customer did "
        "(`rated 5/5`, `linked their chat`); null for an ordinary message",
    )


class EventOut(BaseModel):
    transition: str
    from_status: str | None
    to_status: str
    actor: str
    actor_user_id: int | None
    reason: str | None
    created_at: datetime


class HandoffDetailOut(HandoffOut):
    context: dict[str, Any]
    account: dict[str, Any] | None
    transcript: list[MessageOut]
    events: list[EventOut]


class TextIn(StorableInput):
    text: str = Field(min_length=1, max_length=desk.MAX_REPLY_CHARS)


class ReplyIn(TextIn):
    canned_reply_id: int | None = Field(
        None, ge=1, le=MAX_INT, description="the canned reply it started from (its use is counted)"
    )
    confirm: bool = Field(
        False,
        description="reply even though the handoff is assigned to someone else "
        "(without it such a reply is refused with 409; the handoff stays theirs)",
    )


class ReasonIn(StorableInput):
    reason: str | None = Field(default=None, max_length=500)


class TransferIn(ReasonIn):
    to_user_id: int = Field(ge=1, le=MAX_INT)


class ResolveIn(StorableInput):
    resolution_code: str = Field(json_schema_extra={"enum": list(desk.RESOLUTION_CODES)})
    ask_csat: bool = True
    confirm: bool = Field(
        True,
        description="false: refuse (409) while the customer's last message has no reply yet",
    )


class LinkIn(StorableInput):
    """The contact to tie the chat to: by ``contact_id`` or by ``email`` (one of them)."""

    email: str | None = Field(default=None, min_length=3, max_length=320)
    contact_id: int | None = Field(default=None, ge=1, le=MAX_INT)

    @model_validator(mode="after")
    def _one(self) -> LinkIn:
        if (self.email is None) == (self.contact_id is None):
            raise ValueError("give either email or contact_id")
        return self


class AccountOut(BaseModel):
    external_id: str
    name: str
    plan: str | None
    tier: str | None
    arr: float | None
    renewal_date: Any
    next_qbr_date: Any
    expansion_stage: str | None
    csm_id: int | None
    support_owner_id: int | None = Field(
        None, description="who its conversations go to first when online (null: nobody)"
    )
    health_score: int | None
    health_status: str | None
    health_factors: list[str] = Field(
        default_factory=list, description="why the health score is what it is, worst first"
    )
    attributes: dict[str, Any]


class AccountBody(StorableInput):
    """``accounts.AccountIn`` without the id, which is in the path (same limits, so a body
    that passes here is never refused by ``AccountIn`` with a 500)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=300)
    plan: str | None = Field(default=None, max_length=100)
    tier: str | None = Field(default=None, max_length=50)
    arr: float | None = Field(default=None, ge=0)
    renewal_date: date | None = None
    next_qbr_date: date | None = None
    expansion_stage: str | None = Field(default=None, max_length=100)
    csm_email: str | None = Field(default=None, max_length=320)
    attributes: dict[str, Any] = Field(default_factory=dict)


def _handoff_out(view: desk.HandoffView) -> HandoffOut:
    h = view.handoff
    return HandoffOut(
        **h.model_dump(
            include={
                "id",
                "status",
                "priority",
                "reasons",
                "intent",
                "assignee_id",
                "assignment_reason",
                "version",
                "created_at",
                "waiting_since",
                "sla_due_at",
                "first_response_at",
                "resolved_at",
                "resolution_code",
            }
        ),
        channel=view.channel,
        contact_name=view.contact_name,
        account_name=view.account_name,
        account_tier=view.account_tier,
        assignee_name=view.assignee_name,
        last_customer_text=view.last_customer_text,
    )


def _message_out(
    m: Message, undelivered: dict[int, str] | None = None, taps: dict[int, str] | None = None
) -> MessageOut:
    out = MessageOut.model_validate(m, from_attributes=True)
    out.undelivered = (undelivered or {}).get(m.id or 0)
    if m.direction == "inbound":
        out.activity = activity.describe(m.kind, m.text, (taps or {}).get(m.id or 0))
    return out


def account_out(a: Account) -> AccountOut:
    out = AccountOut.model_validate(a, from_attributes=True)
    out.health_factors = [str(f) for f in (a.attributes or {}).get("health_factors") or []]
    return out


def _detail(session: Session, principal: desk.Principal, handoff_id: int) -> HandoffDetailOut:
    d = desk.get_handoff(session, principal, handoff_id)
    h = d.handoff
    view = desk.HandoffView(
        h,
        d.contact.name,
        d.account.name if d.account else None,
        d.account.tier if d.account else None,
        d.conversation.channel,
        d.assignee.name if d.assignee else None,
        d.last_customer_text,
    )
    base = _handoff_out(view).model_dump()
    return HandoffDetailOut(
        **base,
        context=h.context or {},
        account=account_out(d.account).model_dump(mode="json") if d.account else None,
        transcript=[_message_out(m, d.undelivered, d.taps) for m in d.transcript],
        events=[EventOut.model_validate(e, from_attributes=True) for e in d.events],
    )


# ----------------------------------------------------------------------------- handoffs
@router.get("/handoffs", response_model=list[HandoffOut], responses=errors.responses(422))
def list_handoffs(
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[list[HandoffStatus] | None, Query()] = None,
    priority: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    reason: str | None = None,
    channel: Storable | None = None,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[HandoffOut]:
    """Open handoffs by default, most urgent first; a CSM sees only their accounts'."""
    views = desk.list_handoffs(
        session,
        principal,
        statuses=[s.value for s in status] if status else None,
        priority=priority,
        reason=reason,
        channel=channel,
        assignee_id=principal.user_id if mine else None,
        limit=limit,
    )
    return [_handoff_out(v) for v in views]


@router.get(
    "/handoffs/{handoff_id:int}",
    response_model=HandoffDetailOut,
    responses=errors.responses(404, 422),
)
def get_handoff(handoff_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    return _detail(session, principal, handoff_id)


def _act(
    services: ServicesDep, session: Session, principal: desk.Principal, handoff_id: int
) -> HandoffDetailOut:
    session.commit()
    services.worker.wake()
    return _detail(session, principal, handoff_id)


@router.post(
    "/handoffs/take-next",
    response_model=HandoffDetailOut | None,
    responses=errors.responses(403, 409),
)
def take_next(services: ServicesDep, session: SessionDep, principal: PrincipalDep) -> Any:
    handoff = desk.take_next(session, principal)
    if handoff is None:
        session.rollback()
        return None
    return _act(services, session, principal, handoff.id or 0)


@router.post(
    "/handoffs/{handoff_id:int}/claim",
    response_model=HandoffDetailOut,
    responses=errors.responses(403, 404, 409, 422),
)
def claim(
    handoff_id: Id,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Any:
    desk.claim(session, principal, handoff_id, version=version)
    return _act(services, session, principal, handoff_id)


@router.post(
    "/handoffs/{handoff_id:int}/release",
    response_model=HandoffDetailOut,
    responses=ON_HANDOFF,
)
def release(
    handoff_id: Id,
    body: ReasonIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    desk.release(session, principal, handoff_id, body.reason)
    return _act(services, session, principal, handoff_id)


@router.post(
    "/handoffs/{handoff_id:int}/transfer",
    response_model=HandoffDetailOut,
    responses=ON_HANDOFF,
)
def transfer(
    handoff_id: Id,
    body: TransferIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    desk.transfer(session, principal, handoff_id, body.to_user_id, body.reason)
    return _act(services, session, principal, handoff_id)


@router.post(
    "/handoffs/{handoff_id:int}/reply",
    response_model=MessageOut,
    status_code=201,
    responses=ON_HANDOFF,
)
def reply(
    handoff_id: Id,
    body: ReplyIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    limits = services.models.config().text_limits
    message = desk.reply(
        session,
        principal,
        handoff_id,
        body.text,
        text_limits=limits,
        canned_reply_id=body.canned_reply_id,
        confirm=body.confirm,
    )
    session.commit()
    services.worker.wake()
    return _message_out(message)


@router.post(
    "/handoffs/{handoff_id:int}/notes",
    response_model=MessageOut,
    status_code=201,
    responses=ON_HANDOFF,
)
def add_note(handoff_id: Id, body: TextIn, session: SessionDep, principal: PrincipalDep) -> Any:
    note = desk.add_note(session, principal, handoff_id, body.text)
    session.commit()
    return _message_out(note)


@router.post(
    "/handoffs/{handoff_id:int}/resolve",
    response_model=HandoffDetailOut,
    responses=ON_HANDOFF,
)
def resolve(
    handoff_id: Id,
    body: ResolveIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    limits = services.models.config().text_limits
    desk.resolve(
        session,
        principal,
        handoff_id,
        body.resolution_code,
        ask_csat=body.ask_csat,
        confirm=body.confirm,
        text_limits=limits,
    )
    return _act(services, session, principal, handoff_id)


@router.post(
    "/handoffs/{handoff_id:int}/return-to-bot",
    response_model=HandoffDetailOut,
    responses=ON_HANDOFF,
)
def return_to_bot(
    handoff_id: Id,
    body: ReasonIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    desk.return_to_bot(session, principal, handoff_id, body.reason)
    return _act(services, session, principal, handoff_id)


@router.post(
    "/handoffs/{handoff_id:int}/link-contact",
    response_model=HandoffDetailOut,
    responses=ON_HANDOFF,
)
def link_contact(
    handoff_id: Id,
    body: LinkIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    if body.contact_id is not None:
        desk.link_to_contact(session, principal, handoff_id, body.contact_id)
    else:
        desk.link_contact(session, principal, handoff_id, body.email or "")
    return _act(services, session, principal, handoff_id)


# ------------------------------------------------------------------ accounts / contacts
def _require_admin(principal: desk.Principal) -> None:
    access.require_admin(principal, "change accounts and contacts (or a CRM sync token)")


@router.put(
    "/accounts/{external_id}", response_model=AccountOut, responses=errors.responses(400, 403, 422)
)
def upsert_account(
    external_id: ExternalId, body: AccountBody, session: SessionDep, principal: PrincipalDep
) -> Any:
    """Create or update an account by its CRM id (idempotent)."""
    _require_admin(principal)
    try:
        data = accounts.AccountIn(external_id=external_id, **body.model_dump())
    except ValidationError as exc:  # e.g. an id of blanks, which AccountIn strips to nothing
        raise InvalidInput(accounts._explain(exc)) from exc
    account, _created = accounts.upsert_account(session, data)
    session.commit()
    return account_out(account)


@router.get(
    "/accounts/{external_id}", response_model=AccountOut, responses=errors.responses(404, 422)
)
def get_account(external_id: ExternalId, session: SessionDep, principal: PrincipalDep) -> Any:
    account = accounts.get_account(session, external_id)
    if not access.may_see_account(principal, account):
        raise HTTPException(404, f"account {external_id} not found")
    return account_out(account)


class ContactOut(BaseModel):
    id: int
    email: str | None
    name: str | None
    account_id: int | None


@router.put("/contacts", response_model=ContactOut, responses=errors.responses(400, 403, 404, 422))
def upsert_contact(body: accounts.ContactIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Create or update a contact by email, linked to an account by its external id."""
    _require_admin(principal)
    contact, _created = accounts.upsert_contact(session, body)
    session.commit()
    return ContactOut.model_validate(contact, from_attributes=True)


class ContactMatchOut(ContactOut):
    account_name: str | None


@router.get("/contacts", response_model=list[ContactMatchOut], responses=errors.responses(403, 422))
def find_contacts(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[Storable, Query(min_length=2, max_length=320)],
) -> Any:
    """Contacts whose email or name contains ``q``, among those the caller may link chats to."""
    return [
        ContactMatchOut(
            id=m.contact.id or 0,
            email=m.contact.email,
            name=m.contact.name,
            account_id=m.contact.account_id,
            account_name=m.account_name,
        )
        for m in desk.find_contacts(session, principal, q)
    ]


class LinkTokenOut(BaseModel):
    contact_id: int
    token: str = Field(description="single-use: the customer sends `/start <token>`")
    telegram_url: str | None = Field(
        description="`https://t.me/<bot>?start=<token>` (null while TELEGRAM_BOT_USERNAME is unset)"
    )


@router.post(
    "/contacts/{contact_id:int}/link-token",
    response_model=LinkTokenOut,
    status_code=201,
    responses=errors.responses(403, 404, 422),
)
def issue_link_token(
    contact_id: Id, services: ServicesDep, session: SessionDep, principal: PrincipalDep
) -> Any:
    """A new Telegram link token for a contact (any earlier one stops working)."""
    token = desk.issue_link_token(session, principal, contact_id)
    session.commit()
    username = services.settings.telegram_bot_username
    return LinkTokenOut(
        contact_id=contact_id, token=token, telegram_url=contacts.telegram_link(username, token)
    )


class ErasureOut(BaseModel):
    contact_id: int
    messages: int
    identities: int
    handoffs: int
    alerts: int
    outbox: int
    dead_letters: int
    snapshots_elsewhere: int
    nps: int = 0
    profiles: int = 0


@router.delete(
    "/contacts/{contact_id:int}",
    response_model=ErasureOut,
    responses=errors.responses(403, 404, 422),
)
def erase_contact(contact_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    """Erase the person's messages and identities everywhere (aggregate counts are kept)."""
    _require_admin(principal)
    report = privacy.erase_contact(session, contact_id)
    session.commit()
    return ErasureOut.model_validate(report, from_attributes=True)
