"""Channel webhooks. Thin: verify, normalize, hand to the pipeline, answer after commit."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from bot.channels import telegram, telegram_shape
from bot.web.deps import ServicesDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (413) anything over ``limit`` bytes before parsing it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    return bytes(body)


@router.post("/webhooks/telegram", status_code=200)
async def telegram_webhook(
    request: Request,
    services: ServicesDep,
    secret: str | None = Header(default=None, alias=telegram.SECRET_HEADER),
) -> dict[str, object]:
    """Receive a Telegram update; 200 only once it is committed (or safely dead-lettered)."""
    settings = services.settings
    expected = settings.telegram_webhook_secret
    if not telegram.verify_secret(expected.get_secret_value() if expected else None, secret):
        raise HTTPException(403, "invalid or missing secret token")
    body = await read_body(request, settings.max_body_bytes)
    data: object = None
    try:
        data = telegram_shape.decode_update(body)
        inbound = telegram_shape.parse_checked(data, services.telegram_bot)
    except ValueError as exc:  # JSONDecodeError and malformed updates: keep, acknowledge
        # A non-2xx would make Telegram redeliver forever and hold back the chat's updates.
        update_id = data.get("update_id") if isinstance(data, dict) else None
        stored = await run_in_threadpool(
            services.triage.store_unhandled,
            telegram.CHANNEL,
            str(update_id) if isinstance(update_id, int) else None,
            "dead",
            str(exc),
            body.decode("utf-8", errors="replace"),
        )
        logger.warning("telegram: dead-lettered a malformed update (%s)", type(exc).__name__)
        return {"ok": True, "stored": stored, "dead_letter": True}
    if inbound is None:
        stored = await run_in_threadpool(
            services.triage.store_unhandled,
            telegram.CHANNEL,
            str(data["update_id"]),  # type: ignore[index]
            "ignored",
            "update type without a message",
            body.decode("utf-8", errors="replace"),
        )
        return {"ok": True, "stored": stored, "ignored": True}
    result = await run_in_threadpool(services.triage.receive, inbound)
    return {"ok": True, "duplicate": result.duplicate, "action": result.action}
