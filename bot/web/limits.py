"""Request body size limits, enforced before any route reads a byte (an ASGI middleware).

Every route gets ``MAX_BODY_BYTES``; a few (the usage CSV import) get their own, larger limit.
A declared ``Content-Length`` over the limit is answered 413 at once, without reading the
body; a body sent without one (chunked) is counted as it streams in, and the request is cut
off with a 413 as soon as it passes the limit — so no route ever holds more than the limit in
memory, whoever sends it, with or without a token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """Raised into the route reading a body that passed its limit (answered 413 here)."""


async def send_json(
    send: Send, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> None:
    """Answer a plain JSON error (``{"detail": ...}``) straight from a middleware."""
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | str | None:
    """The Content-Length header: an int, None when absent, or "invalid"."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else "invalid"
    return None


@dataclass
class _Progress:
    seen: int = 0
    exceeded: bool = False
    started: bool = False


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit of its path (counted, never buffered)."""

    def __init__(self, app: ASGIApp, default: int, per_path: Mapping[str, int] | None = None):
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default)
        declared = _declared_length(scope)
        if declared == "invalid":
            await send_json(send, 400, "invalid Content-Length header")
            return
        if isinstance(declared, int) and declared > limit:
            await send_json(send, 413, f"the body is larger than {limit} bytes")
            return
        state = _Progress()

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.seen += len(message.get("body", b""))
                if state.seen > limit:
                    state.exceeded = True
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            if state.exceeded and not state.started:
                return  # the route's own answer to the cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                state.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # BodyTooLarge, or whatever a route turned it into; anything else is re-raised
            if not state.exceeded:
                raise
        if state.exceeded and not state.started:
            logger.info("refused a body over %d bytes on %s", limit, scope.get("path"))
            await send_json(
                send, 413, f"the body is larger than {limit} bytes", {"connection": "close"}
            )
