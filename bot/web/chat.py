"""Web chat routes: the widget page, its JSON API and a Server-Sent Events stream.

* ``GET /chat``: the widget (Jinja2 with autoescape, vanilla JS and CSS from ``/static``).
* ``POST /chat/api/messages``: one customer message, committed before the answer.
* ``GET /chat/api/messages?after=<id>``: the visitor's history after a message id.
* ``GET /chat/api/stream``: new messages as SSE events with ``id:`` lines, so a reconnecting
  ``EventSource`` resumes from ``Last-Event-ID``. Wake-ups come from the in-process hub, with a
  slow poll as well (another instance may have sent the reply); a keep-alive comment every 15 s;
  a stream ends after a few minutes (the browser reconnects) or when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine
from sqlmodel import Session

from bot.channels import webchat, webchat_history
from bot.web.deps import ServicesDep
from bot.web.rate_limit import SLOW_DOWN
from bot.web.webhooks import read_body
from handoff.text import depth_of

logger = logging.getLogger(__name__)
router = APIRouter(tags=["webchat"])
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)

MAX_ID = 2**63 - 1  # message ids are at most a signed 64-bit integer on every database
MAX_DEPTH = 8  # the widget sends a flat object
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 5.0
STREAM_SECONDS = 300.0
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def get_webchat(services: ServicesDep) -> webchat.WebChat:
    chat = services.webchat
    if chat is None:  # only an app built without create_app's wiring
        raise HTTPException(404, "the web chat is not enabled")
    return chat


WebChatDep = Annotated[webchat.WebChat, Depends(get_webchat)]


class Visitor:
    """The visitor of this request: from a genuine cookie, or a new one (cookie to set)."""

    def __init__(self, request: Request, chat: WebChatDep, services: ServicesDep) -> None:
        known = chat.cookies.verify(request.cookies.get(webchat.COOKIE_NAME))
        self.new_cookie: str | None = None
        if known is None:
            known, self.new_cookie = chat.cookies.issue()
        self.id: str = known
        self._settings = services.settings

    def set_cookie(self, response: Response) -> None:
        if self.new_cookie is None:
            return
        response.set_cookie(
            webchat.COOKIE_NAME,
            self.new_cookie,
            max_age=webchat.COOKIE_MAX_AGE,
            path="/chat",
            httponly=True,
            samesite="lax",
            secure=self._settings.public_url.startswith("https://"),
        )


VisitorDep = Annotated[Visitor, Depends()]


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request, services: ServicesDep, visitor: VisitorDep) -> HTMLResponse:
    """The chat widget (also embeddable in an ``<iframe>``), its header saying who has the
    chat now (after a reload too)."""
    with Session(services.engine) as session:
        state = webchat_history.visitor_state(session, visitor.id)
    response = templates.TemplateResponse(
        request,
        "chat.html",
        {
            "product_name": services.settings.product_name,
            "status_text": webchat_history.STATUS_TEXTS[state],
            "status_texts": webchat_history.STATUS_TEXTS,
        },
        headers=PAGE_HEADERS,
    )
    visitor.set_cookie(response)
    return response


@router.post("/chat/api/messages")
async def post_message(
    request: Request,
    response: Response,
    services: ServicesDep,
    chat: WebChatDep,
    visitor: VisitorDep,
) -> dict[str, object]:
    """Receive one message from the widget; answers only once it is committed."""
    limits = services.chat_limits
    address = request.client.host if request.client else "unknown"
    wait = limits.retry_after(visitor.id, address) if limits is not None else 0
    if wait:
        logger.info("web chat: rate limited a visitor (%d s)", wait)
        raise HTTPException(429, SLOW_DOWN, headers={"Retry-After": str(wait)})
    body = await read_body(request, services.settings.max_body_bytes)
    try:
        data = json.loads(body)
    except RecursionError as exc:  # the C decoder's answer to '[' * 100000
        raise HTTPException(400, "the body is not valid JSON: it nests too deeply") from exc
    except ValueError as exc:
        raise HTTPException(400, "the body is not valid JSON") from exc
    if depth_of(data, MAX_DEPTH) > MAX_DEPTH:
        raise HTTPException(422, "the body nests too deeply")
    try:
        inbound = webchat.parse_post(data, visitor.id, chat.cookies.key_id)
    except webchat.InvalidPost as exc:
        raise HTTPException(422, exc.problems) from exc
    result = await run_in_threadpool(services.triage.receive, inbound)
    chat.hub.publish(visitor.id)  # the visitor's other tabs show the message at once
    visitor.set_cookie(response)
    return {
        "duplicate": result.duplicate,
        "action": result.action,
        "message_id": result.message_id,
    }


@router.get("/chat/api/messages")
async def list_messages(
    response: Response,
    services: ServicesDep,
    visitor: VisitorDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, list[webchat_history.ChatMessagePublic]]:
    """The visitor's messages after ``after`` (the latest ones when 0), oldest first."""
    visitor.set_cookie(response)
    response.headers["Cache-Control"] = "no-store"
    messages = await run_in_threadpool(_read, services.engine, visitor.id, after)
    return {"messages": messages}


@router.get("/chat/api/stream")
async def stream(
    services: ServicesDep,
    chat: WebChatDep,
    visitor: VisitorDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: each new message of the visitor as one ``data:`` JSON event."""
    if last_event_id is not None and last_event_id.isdigit() and len(last_event_id) < 19:
        after = max(after, int(last_event_id))
    response = StreamingResponse(
        _events(services.engine, chat.hub, visitor.id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    visitor.set_cookie(response)
    return response


async def _events(
    engine: Engine, hub: webchat.VisitorHub, visitor_id: str, after: int
) -> AsyncIterator[str]:
    yield "retry: 3000\n\n"
    last = after
    started = last_write = time.monotonic()
    with hub.listen(visitor_id) as listener:  # registered before the first read: no lost wake-up
        while not hub.closed and time.monotonic() - started < STREAM_SECONDS:
            fresh = await run_in_threadpool(_read, engine, visitor_id, last)
            for message in fresh:
                last = max(last, message.id)
                yield f"id: {message.id}\ndata: {message.model_dump_json()}\n\n"
            if len(fresh) >= webchat.PAGE:
                continue  # more are waiting
            now = time.monotonic()
            if fresh:
                last_write = now
            elif now - last_write >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_write = now
            pause = min(POLL_SECONDS, KEEPALIVE_SECONDS - (now - last_write))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(pause, 0.0)):
                    await listener.wait()


def _read(engine: Engine, visitor_id: str, after: int) -> list[webchat_history.ChatMessagePublic]:
    with Session(engine) as session:
        return webchat_history.visitor_messages(session, visitor_id, after=after)
