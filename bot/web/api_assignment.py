"""REST API v1: availability, assignment settings (capacity, support owner) and collision
presence on a conversation.

Thin like ``bot.web.api``: validate, call one ``handoff`` service (which enforces who may do
what), commit, serialize.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bot.web import errors
from bot.web.api import MAX_INT, AccountOut, ExternalId, Id, PrincipalDep, SessionDep, account_out
from bot.web.deps import ServicesDep
from handoff import assignment, availability, collision
from handoff.text import StorableInput

router = APIRouter(prefix="/api/v1", tags=["api"], responses=errors.responses(401))


class AvailabilityIn(StorableInput):
    status: Literal["online", "away"] = Field(
        description="online: new handoffs are assigned to you (up to your capacity)"
    )
    minutes: int | None = Field(
        None,
        ge=1,
        le=availability.MAX_API_MINUTES,
        description="how long you stay online without renewing (default 480)",
    )


class AvailabilityOut(BaseModel):
    status: Literal["online", "away"]
    until: datetime | None = Field(None, description="when online ends unless renewed")


class CapacityIn(StorableInput):
    capacity: int = Field(
        ge=1, le=assignment.MAX_CAPACITY, description="open handoffs assigned automatically"
    )


class UserCapacityOut(BaseModel):
    id: int
    name: str
    role: str
    capacity: int


class SupportOwnerIn(StorableInput):
    user_id: Annotated[int, Field(ge=1, le=MAX_INT)] | None = Field(
        description="an active agent or admin, or the account's CSM; null: nobody"
    )


class PresenceIn(StorableInput):
    typing: bool = Field(False, description="you are typing a reply")


class ViewerOut(BaseModel):
    user_id: int
    name: str
    typing: bool


def _availability_out(state: availability.State) -> AvailabilityOut:
    return AvailabilityOut(status=state.status, until=state.until)  # type: ignore[arg-type]


@router.get("/me/availability", response_model=AvailabilityOut, responses=errors.responses(403))
def get_availability(session: SessionDep, principal: PrincipalDep) -> Any:
    """Whether you are online (new handoffs are assigned to you) or away."""
    return _availability_out(availability.state_of(session, principal.user_id))


@router.put(
    "/me/availability",
    response_model=AvailabilityOut,
    responses=errors.responses(400, 403, 404, 422),
)
def put_availability(body: AvailabilityIn, services: ServicesDep, principal: PrincipalDep) -> Any:
    """Go online (waiting handoffs are assigned to you up to your capacity) or away (after
    ``assignment.away_return_minutes`` your open handoffs return to the queue)."""
    state = assignment.change_availability(
        services.engine,
        principal,
        body.status,
        services.models.config().policy.assignment,
        minutes=body.minutes,
    )
    return _availability_out(state)


@router.put(
    "/users/{user_id:int}/capacity",
    response_model=UserCapacityOut,
    responses=errors.responses(400, 403, 404, 422),
)
def put_capacity(
    user_id: Id, body: CapacityIn, session: SessionDep, principal: PrincipalDep
) -> Any:
    """How many open handoffs this person gets automatically (admins only)."""
    user = assignment.set_capacity(session, principal, user_id, body.capacity)
    session.commit()
    return UserCapacityOut(id=user.id or 0, name=user.name, role=user.role, capacity=user.capacity)


@router.put(
    "/accounts/{external_id}/support-owner",
    response_model=AccountOut,
    responses=errors.responses(400, 403, 404, 422),
)
def put_support_owner(
    external_id: ExternalId, body: SupportOwnerIn, session: SessionDep, principal: PrincipalDep
) -> Any:
    """Who this account's conversations go to first while they are online (admins only)."""
    account = assignment.set_support_owner(session, principal, external_id, body.user_id)
    session.commit()
    return account_out(account)


@router.post(
    "/handoffs/{handoff_id:int}/presence",
    response_model=list[ViewerOut],
    responses=errors.responses(400, 403, 404, 422),
)
def post_presence(
    handoff_id: Id, body: PresenceIn, session: SessionDep, principal: PrincipalDep
) -> Any:
    """Say you are on this conversation (every few seconds; typing or not); answers who else
    is on it now and whether they are typing."""
    viewers = collision.touch(session, principal, handoff_id, body.typing)
    session.commit()
    return [ViewerOut(user_id=v.user_id, name=v.name, typing=v.typing) for v in viewers]
