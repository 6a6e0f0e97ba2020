"""REST API v1 for customer signals (usage, NPS) and CS alerts (token auth, like api.py).

Writes are for admins (or a sync token of an admin user); a CSM may acknowledge their own
alerts. Every ingestion recomputes the account's health and may alert its CSM.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bot.web import errors
from bot.web.api import ExternalId, Id, PrincipalDep, SessionDep
from bot.web.deps import ServicesDep
from handoff import access, alerts, desk, signals
from handoff.errors import InvalidInput
from handoff.health import load_health_config
from handoff.models import utcnow

router = APIRouter(prefix="/api/v1", tags=["signals"], responses=errors.responses(401))
IMPORT_PATH = "/api/v1/usage:import"  # its body limit is MAX_IMPORT_BODY_BYTES, not the default


class HealthOut(BaseModel):
    score: int
    status: str
    factors: list[str]
    alerts: list[str]


class UsageOut(BaseModel):
    account: str
    date: date
    active_users: int
    seats: int
    logins: int
    key_feature_events: int
    health: HealthOut


class NpsOut(BaseModel):
    account: str
    external_id: str
    score: int
    date: date
    health: HealthOut


class ImportOut(BaseModel):
    ok: bool
    created: int
    updated: int
    rejected: list[dict[str, Any]]


class AlertOut(BaseModel):
    id: int
    kind: str
    title: str
    acknowledged_at: datetime | None
    acknowledged_by: int | None


def _require_admin(principal: desk.Principal) -> None:
    access.require_admin(principal, "send customer signals (or a sync token)")


def _options(services: ServicesDep) -> signals.SignalOptions:
    settings = services.settings
    slack = settings.slack_webhook_url
    return signals.SignalOptions(
        load_health_config(settings.health_path),
        utcnow().date(),
        slack.get_secret_value() if slack else None,
    )


def _health(refresh: signals.Refresh) -> HealthOut:
    result = refresh.change.result
    return HealthOut(
        score=result.score,
        status=result.status,
        factors=result.reasons(),
        alerts=[a.kind for a in refresh.alerts],
    )


@router.put(
    "/accounts/{external_id}/usage/{day}",
    response_model=UsageOut,
    responses=errors.responses(400, 403, 404, 422),
)
def put_usage(
    external_id: ExternalId,
    day: date,
    body: signals.UsageIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """Store one day of product usage (idempotent: the same day again replaces it)."""
    _require_admin(principal)
    row, refresh = signals.record_usage(session, external_id, day, body, _options(services))
    session.commit()
    services.worker.wake()
    return UsageOut(account=external_id, date=row.day, **body.model_dump(), health=_health(refresh))


@router.post(
    "/accounts/{external_id}/nps",
    response_model=NpsOut,
    status_code=201,
    responses=errors.responses(400, 403, 404, 422),
)
def post_nps(
    external_id: ExternalId,
    body: signals.NpsIn,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """Store an NPS answer (0-10); the same ``external_id`` again updates it."""
    _require_admin(principal)
    row, refresh = signals.record_nps(session, external_id, body, _options(services))
    session.commit()
    services.worker.wake()
    return NpsOut(
        account=external_id,
        external_id=row.external_id,
        score=row.score,
        date=row.responded_on,
        health=_health(refresh),
    )


@router.post(
    IMPORT_PATH.removeprefix("/api/v1"),
    response_model=ImportOut,
    responses={
        **errors.responses(403),
        422: {
            "model": ImportOut | errors.ErrorOut | errors.ValidationErrorOut,
            "description": "rows rejected (none kept), the CSV is not UTF-8, or no body",
        },
    },
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string", "minLength": 1}}}}
    },
)
def import_usage(
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    body: Annotated[bytes, Body(media_type="text/csv")],
) -> Any:
    """Import daily usage from CSV: every row or none (422 with the reasons per line)."""
    _require_admin(principal)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV is not UTF-8: {exc}") from exc
    report = signals.import_usage_csv(session, text, _options(services))
    out = ImportOut(
        ok=report.ok,
        created=report.created,
        updated=report.updated,
        rejected=[{"line": line, "reason": why} for line, why in report.rejected],
    )
    if not report.ok:
        session.rollback()
        return JSONResponse(out.model_dump(), status_code=422)
    session.commit()
    services.worker.wake()
    return out


@router.post(
    "/alerts/{alert_id:int}/ack", response_model=AlertOut, responses=errors.responses(403, 404, 422)
)
def acknowledge(alert_id: Id, session: SessionDep, principal: PrincipalDep) -> Any:
    """Acknowledge a CS alert (only the CSM it was sent to, or an admin)."""
    alert = alerts.acknowledge_alert(session, principal.user_id, alert_id)
    session.commit()
    return AlertOut.model_validate(alert, from_attributes=True)
