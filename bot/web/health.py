"""``GET /healthz``: database and model status."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.web.deps import ServicesDep
from handoff.migrate import current_revision

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the database answers and the schema is migrated; the model status is reported
    (a missing model degrades the service — everything escalates — but does not fail it)."""
    database: dict[str, object] = {"status": "ok", "dialect": services.engine.dialect.name}
    ok = True
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            revision = current_revision(conn)
        database["revision"] = revision
        if revision is None:
            database["status"] = "not migrated: run 'triagebot migrate'"
            ok = False
    except SQLAlchemyError as exc:
        logger.warning("health check: database unavailable: %s", type(exc).__name__)
        database["status"] = f"unavailable: {type(exc).__name__}"
        ok = False
    model = services.models.status()
    body = {
        "status": "ok" if ok and model["status"] == "ok" else ("degraded" if ok else "down"),
        "database": database,
        "model": model,
        "channels": sorted(services.senders),
    }
    return JSONResponse(body, status_code=200 if ok else 503)
