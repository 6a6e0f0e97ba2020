"""A fake WhatsApp Cloud API (Graph API) on loopback that records what customers would receive.

Serves ``POST /{version}/{phone_number_id}/messages`` with Bearer authentication, answers
like Meta (``{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id":
"wamid..."}]}``) and can script failures (``fail_next``): 429 / 130429 rate limits, 5xx,
131047 (outside the 24-hour window), 131026 (undeliverable), 190 (bad token).

Template messages (``"type": "template"``) are checked like Meta does: the template must be
one the fake knows as approved (``approve``), in that language, with exactly its number of
body parameters; otherwise 400 with error 132000 (parameter count mismatch) or 132001
(template does not exist). ``templates()`` lists the template messages delivered.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.telegram_api import ServerThread

API_VERSION = "v21.0"
ERROR_TITLES = {
    4: "Application request limit reached",
    190: "Invalid OAuth access token",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}


@dataclass
class Sent:
    phone_number_id: str
    authorization: str
    body: dict[str, Any]
    wamid: str | None = None  # the id we answered with (None for a failed call)


@dataclass
class FakeGraphApi:
    """Recorded sends and scripted failures, shared with the server thread."""

    access_token: str = ""
    calls: list[Sent] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    base_url: str = ""
    # approved templates: (name, language code) -> number of body parameters
    approved: dict[tuple[str, str], int] = field(default_factory=dict)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.failures.clear()
            self.approved.clear()

    def approve(self, name: str, language: str, parameters: int) -> None:
        """Make a template known as approved, with this many body parameters."""
        with self.lock:
            self.approved[(name, language)] = parameters

    def templates(self, to: str | None = None) -> list[dict[str, Any]]:
        """The ``template`` object of each delivered template message."""
        return [c.body["template"] for c in self.delivered(to) if c.body.get("type") == "template"]

    def fail_next(
        self, status: int, code: int | None = None, *, retry_after: int | None = None
    ) -> None:
        """Make the next send fail with this HTTP status and Graph API error code."""
        title = ERROR_TITLES.get(code or 0, "error")
        body = {
            "error": {
                "message": f"({code}) {title}",
                "type": "OAuthException",
                "code": code if code is not None else status,
                "error_data": {"messaging_product": "whatsapp", "details": title},
                "fbtrace_id": "AbCdEfGh123",
            }
        }
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.lock:
            self.failures.append((status, body, headers))

    def delivered(self, to: str | None = None) -> list[Sent]:
        """Successful sends (what the customer received), optionally to one number."""
        with self.lock:
            return [c for c in self.calls if c.wamid and (to is None or c.body.get("to") == to)]

    def texts(self, to: str | None = None) -> list[str]:
        """The visible text of each delivered message (interactive body or text body)."""
        out = []
        for call in self.delivered(to):
            if call.body.get("type") == "interactive":
                out.append(call.body["interactive"]["body"]["text"])
            elif call.body.get("type") == "template":
                out.append(f"[template {call.body['template']['name']}]")
            else:
                out.append(call.body["text"]["body"])
        return out

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` is true (raises AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s; calls: {self.calls}")

    async def handle(self, request: Request) -> JSONResponse:
        phone_number_id = request.path_params["phone_number_id"]
        authorization = request.headers.get("authorization", "")
        body = await request.json()
        call = Sent(phone_number_id, authorization, body)
        with self.lock:
            self.calls.append(call)
            if authorization != f"Bearer {self.access_token}":
                failure = (401, _auth_error(), {})
            elif body.get("messaging_product") != "whatsapp" or "to" not in body:
                failure = (400, {"error": {"code": 100, "message": "Invalid parameter"}}, {})
            elif body.get("type") == "template" and (code := self._template_error(body)):
                failure = (400, _error(code), {})
            else:
                failure = self.failures.pop(0) if self.failures else None
            if failure is None:
                call.wamid = f"wamid.FAKE{next(self._ids):08d}"
        if failure is not None:
            status, error, headers = failure
            return JSONResponse(error, status_code=status, headers=headers)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": call.wamid}],
            }
        )

    def _template_error(self, body: dict[str, Any]) -> int | None:
        """Meta's error code for a template message it would refuse, else None."""
        template = body.get("template") or {}
        key = (template.get("name"), (template.get("language") or {}).get("code"))
        if key not in self.approved:
            return 132001
        given = sum(
            len(c.get("parameters") or [])
            for c in template.get("components") or []
            if c.get("type") == "body"
        )
        return 132000 if given != self.approved[key] else None


def _error(code: int) -> dict[str, Any]:
    return {
        "error": {
            "message": f"({code}) {ERROR_TITLES[code]}",
            "type": "OAuthException",
            "code": code,
        }
    }


def _auth_error() -> dict[str, Any]:
    return {"error": {"message": ERROR_TITLES[190], "type": "OAuthException", "code": 190}}


def start_fake_graph_api(access_token: str) -> tuple[FakeGraphApi, ServerThread]:
    fake = FakeGraphApi(access_token=access_token)
    app = Starlette(
        routes=[
            Route(f"/{API_VERSION}/{{phone_number_id}}/messages", fake.handle, methods=["POST"])
        ]
    )
    server = ServerThread(app).__enter__()
    fake.base_url = f"http://127.0.0.1:{server.port}/{API_VERSION}"
    return fake, server
