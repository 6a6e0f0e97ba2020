"""A fake Slack-compatible incoming webhook on loopback: records posted alerts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes.telegram_api import ServerThread


@dataclass
class FakeSlack:
    posts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def fail_next(self, status: int) -> None:
        with self.lock:
            self.failures.append(status)

    def texts(self) -> list[str]:
        with self.lock:
            return [p["text"] for p in self.posts]

    async def handle(self, request: Request) -> PlainTextResponse:
        body = await request.json()
        with self.lock:
            if self.failures:
                return PlainTextResponse("error", status_code=self.failures.pop(0))
            self.posts.append(body)
        return PlainTextResponse("ok")


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    app = Starlette(routes=[Route("/services/{path:path}", fake.handle, methods=["POST"])])
    with ServerThread(app) as server:
        fake.url = f"http://127.0.0.1:{server.port}/services/T000/B000/XXXX"
        yield fake
