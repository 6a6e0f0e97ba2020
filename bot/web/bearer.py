"""API token authentication before the body is read (an ASGI middleware on ``/api/v1/``).

FastAPI reads and parses a route's body before it resolves the route's dependencies, so a
token checked in a dependency is checked too late: anyone could make the server parse a body
(up to the body limit) without a token. This middleware answers 401 first, from the headers
alone, and hands the authenticated principal to the routes in the request's state
(:func:`principal_of`), so the token is looked up once per request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.web.limits import send_json
from handoff import desk, users

PREFIX = "/api/v1/"
STATE_KEY = "api_principal"
CHALLENGE = {"www-authenticate": "Bearer"}


def bearer_token(scope: Scope) -> str:
    """The token of an ``Authorization: Bearer`` header, or "" when there is none."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def authenticate(engine: Engine, token: str) -> desk.Principal | None:
    """The principal holding an API token, or None."""
    with Session(engine) as session:
        user = users.user_for_token(session, token)
        return desk.Principal.of(user) if user is not None else None


def principal_of(state: Any) -> desk.Principal | None:
    """The principal this middleware authenticated for the request (None: not yet checked)."""
    found = getattr(state, STATE_KEY, None)
    return found if isinstance(found, desk.Principal) else None


class BearerAuth:
    """ASGI middleware: 401 on ``/api/v1/`` without a valid token, before the body is read."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        principal = await run_in_threadpool(authenticate, self.engine, token) if token else None
        if principal is None:
            await send_json(send, 401, "missing or invalid API token", CHALLENGE)
            return
        scope.setdefault("state", {})[STATE_KEY] = principal
        await self.app(scope, receive, send)
