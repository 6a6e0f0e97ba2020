"""The WhatsApp Cloud API webhook: Meta's GET handshake and signed POST batches.

Thin like the Telegram webhook: verify the signature over the raw body, normalize the batch,
hand each message to the pipeline and each receipt to the outbox, and answer 200 only once
all of it is committed (a non-2xx makes Meta redeliver the batch; deduplication on the
wamid makes that harmless).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine
from sqlmodel import Session

from bot.channels import whatsapp
from bot.channels.base import InboundMessage
from bot.web.deps import ServicesDep
from bot.web.webhooks import read_body
from handoff import outbox

logger = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse)
def whatsapp_verify(
    services: ServicesDep,
    mode: str | None = Query(default=None, alias="hub.mode"),
    token: str | None = Query(default=None, alias="hub.verify_token"),
    challenge: str = Query(default="", alias="hub.challenge"),
) -> PlainTextResponse:
    """Meta's subscription handshake: echo the challenge when the verify token matches."""
    expected = services.settings.whatsapp_verify_token
    if not whatsapp.verify_subscription(
        expected.get_secret_value() if expected else None, mode, token
    ):
        raise HTTPException(403, "verify token mismatch")
    return PlainTextResponse(challenge)


@router.post("/webhooks/whatsapp", status_code=200)
async def whatsapp_webhook(
    request: Request,
    services: ServicesDep,
    signature: str | None = Header(default=None, alias=whatsapp.SIGNATURE_HEADER),
) -> dict[str, object]:
    """Receive a batch of messages and receipts; 200 only once everything is committed."""
    settings = services.settings
    secret = settings.whatsapp_app_secret
    app_secret = secret.get_secret_value() if secret else None
    if not app_secret or not signature:
        raise HTTPException(403, "invalid or missing signature")
    body = await read_body(request, settings.max_body_bytes)
    if not whatsapp.verify_signature(app_secret, body, signature):
        raise HTTPException(403, "invalid or missing signature")
    text = body.decode("utf-8", errors="replace")
    try:
        items = whatsapp.parse_payload(json.loads(body, parse_constant=_refuse_constant))
    except (ValueError, RecursionError) as exc:  # bad JSON or not a WhatsApp notification
        # Signed by Meta, so a non-2xx would only make it redeliver the same bytes forever.
        stored = await run_in_threadpool(
            services.triage.store_unhandled, whatsapp.CHANNEL, None, "dead", str(exc), text
        )
        logger.warning("whatsapp: dead-lettered a malformed notification (%s)", type(exc).__name__)
        return {"ok": True, "stored": stored, "dead_letter": True}
    if not items:
        stored = await run_in_threadpool(
            services.triage.store_unhandled,
            whatsapp.CHANNEL,
            None,
            "ignored",
            "notification without messages or statuses",
            text,
        )
        return {"ok": True, "stored": stored, "ignored": True}
    counts = {"messages": 0, "duplicates": 0, "notices": 0, "statuses": 0}
    for item in items:
        if isinstance(item, InboundMessage):
            result = await run_in_threadpool(services.triage.receive, item)
            counts["duplicates" if result.duplicate else "messages"] += 1
        elif isinstance(item, whatsapp.Notice):
            await run_in_threadpool(
                services.triage.store_unhandled,
                whatsapp.CHANNEL,
                item.external_id,
                "ignored",
                item.reason,
                json.dumps(item.raw, ensure_ascii=False),
            )
            counts["notices"] += 1
    statuses = [item for item in items if isinstance(item, whatsapp.StatusUpdate)]
    if statuses:
        counts["statuses"] = await run_in_threadpool(record_statuses, services.engine, statuses)
    return {"ok": True, **counts}


def record_statuses(engine: Engine, statuses: list[whatsapp.StatusUpdate]) -> int:
    """Apply delivery receipts to the outbox in one transaction; returns how many applied."""
    applied = 0
    with Session(engine) as session:
        for status in statuses:
            applied += outbox.record_delivery_status(
                session,
                whatsapp.CHANNEL,
                status.provider_message_id,
                status.status,
                error=status.error,
            )
        session.commit()
    return applied


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")  # NaN and Infinity: not storable as JSON
