"""A fake Telegram Bot API server on loopback that records what the customer would receive.

python-telegram-bot's real ``Bot`` talks to it over HTTP. Tests can script failures
(``fail_next``) such as 429 with ``retry_after``, 5xx, or 403 "bot was blocked by the user".
It also serves ``getUpdates`` from a scripted queue (``queue_updates``), honouring ``offset``
as Telegram does (updates below it are confirmed and forgotten), and keeps the webhook's state
for ``setWebhook``/``deleteWebhook``/``getWebhookInfo`` (getUpdates is refused with 409 while a
webhook is set, like the real API).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeBotApi:
    """Recorded calls and scripted failures, shared with the server thread."""

    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any], str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    base_url: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    max_poll_seconds: float = 0.5  # getUpdates waits at most this long (tests stay fast)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.failures.clear()
            self.updates.clear()
            self.webhook.clear()

    def queue_updates(self, *updates: dict[str, Any]) -> None:
        """Make ``getUpdates`` serve these updates (until an offset confirms them)."""
        with self.lock:
            self.updates.extend(updates)

    def fail_next(
        self,
        status: int,
        description: str = "error",
        *,
        method: str | None = None,
        **parameters: Any,
    ) -> None:
        """Make the next call (of ``method``, if given) fail with this HTTP status (and Bot
        API parameters)."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        with self.lock:
            self.failures.append((status, body, method))

    def sent(self, method: str = "sendMessage") -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        return [
            c.params["text"]
            for c in self.sent()
            if chat_id is None or str(c.params.get("chat_id")) == str(chat_id)
        ]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` is true (raises AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s; calls: {self.calls}")

    async def handle(self, request: Request) -> JSONResponse:
        path = request.url.path  # /bot<token>/<method>
        prefix, _, method = path.rpartition("/")
        token = prefix.removeprefix("/bot")
        if request.headers.get("content-type", "").startswith("application/json"):
            params = await request.json()
        else:
            form = await request.form()
            params = {k: _maybe_json(v) for k, v in form.items()}
        # The Bot API also takes parameters in the query string.
        params.update({k: _maybe_json(v) for k, v in request.query_params.items()})
        with self.lock:
            self.calls.append(Call(token, method, params))
            failure = next(
                (
                    f
                    for f in self.failures
                    if method != "getMe" and (f[2] is None or f[2] == method)
                ),
                None,
            )
            if failure is not None:
                self.failures.remove(failure)
        if failure is not None:
            status, body, _ = failure
            return JSONResponse(body, status_code=status)
        if method == "getUpdates":
            return await self._get_updates(params)
        return JSONResponse({"ok": True, "result": self._result(method, params)})

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 42, "is_bot": True, "first_name": "Triage", "username": "triage_bot"}
        if method == "sendMessage":
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params.get("text", ""),
            }
        if method == "setWebhook":
            with self.lock:
                self.webhook.clear()
                self.webhook.update(params)
            return True
        if method == "deleteWebhook":
            with self.lock:
                self.webhook.clear()
            return True
        if method == "getWebhookInfo":
            with self.lock:
                info: dict[str, Any] = {
                    "url": self.webhook.get("url", ""),
                    "has_custom_certificate": False,
                    "pending_update_count": len(self.updates),
                }
                for key in ("allowed_updates", "last_error_date", "last_error_message"):
                    if key in self.webhook:
                        info[key] = self.webhook[key]
            return info
        return True

    async def _get_updates(self, params: dict[str, Any]) -> JSONResponse:
        with self.lock:
            webhook_url = self.webhook.get("url")
        if webhook_url:
            description = (
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
            return JSONResponse(
                {"ok": False, "error_code": 409, "description": description}, status_code=409
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), self.max_poll_seconds)
        while True:
            with self.lock:
                if offset:  # confirms (forgets) every update below the offset
                    self.updates[:] = [u for u in self.updates if _update_id(u) >= offset]
                batch = [u for u in self.updates if _update_id(u) >= offset][:limit]
            if batch or time.monotonic() >= deadline:
                return JSONResponse({"ok": True, "result": batch})
            await asyncio.sleep(0.02)


def _update_id(update: Any) -> int:
    value = update.get("update_id") if isinstance(update, dict) else None
    return value if isinstance(value, int) else -1


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class ServerThread:
    """Runs an ASGI app with uvicorn on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def start_fake_bot_api() -> tuple[FakeBotApi, ServerThread]:
    fake = FakeBotApi()
    app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=["GET", "POST"])])
    server = ServerThread(app).__enter__()
    fake.base_url = f"http://127.0.0.1:{server.port}/bot"
    return fake, server
