"""A fast standalone fake Telegram Bot API for the load benchmarks (run in its own process).

    python -m benchmarks.fake_bot_api --port 9000 [--p429 0.05] [--p5xx 0.05] [--seed 1]

Answers every Bot API method the way Telegram does (getMe, setWebhook, sendMessage...), and
records each ``sendMessage`` call in arrival order: sequence number, wall-clock time, chat id,
text, the HTTP status it answered and, when accepted, the ``message_id`` it returned. With
``--p429``/``--p5xx`` it refuses that share of ``sendMessage`` calls with 429 (``retry_after``
1 s) or a 5xx, like Telegram's flood control and its occasional gateway errors.

``GET /_records`` returns the records as JSON, ``POST /_reset`` forgets them; ``GET /_stats``
returns counters only.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Recorder:
    """The fake's state: failure rates, counters and the ordered sendMessage records."""

    def __init__(self, p429: float, p5xx: float, seed: int) -> None:
        self.p429 = p429
        self.p5xx = p5xx
        self.random = random.Random(seed)
        self.records: list[list[Any]] = []  # [seq, t, chat_id, text, status, message_id]
        self.next_message_id = 1
        self.calls: dict[str, int] = {}

    def reset(self) -> None:
        self.records.clear()
        self.calls.clear()

    async def handle(self, request: Request) -> Response:
        method = request.url.path.rpartition("/")[2]
        self.calls[method] = self.calls.get(method, 0) + 1
        params = await _params(request)
        if method == "sendMessage":
            return self._send_message(params)
        if method == "getMe":
            result: Any = {"id": 42, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        elif method == "getUpdates":
            result = []
        else:
            result = True  # setWebhook, deleteWebhook, answerCallbackQuery...
        return JSONResponse({"ok": True, "result": result})

    def _send_message(self, params: dict[str, Any]) -> Response:
        now = time.time()
        chat_id = str(params.get("chat_id", ""))
        text = str(params.get("text", ""))
        roll = self.random.random()
        seq = len(self.records)
        if roll < self.p429:
            self.records.append([seq, now, chat_id, text, 429, None])
            body = {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
            return JSONResponse(body, status_code=429)
        if roll < self.p429 + self.p5xx:
            self.records.append([seq, now, chat_id, text, 502, None])
            return JSONResponse(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status_code=502
            )
        message_id = self.next_message_id
        self.next_message_id += 1
        self.records.append([seq, now, chat_id, text, 200, message_id])
        result = {
            "message_id": message_id,
            "date": int(now),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else 0, "type": "private"},
            "text": text,
        }
        return JSONResponse({"ok": True, "result": result})

    async def dump(self, _request: Request) -> Response:
        return Response(json.dumps(self.records), media_type="application/json")

    async def stats(self, _request: Request) -> Response:
        statuses: dict[str, int] = {}
        for record in self.records:
            statuses[str(record[4])] = statuses.get(str(record[4]), 0) + 1
        return JSONResponse({"calls": self.calls, "send_statuses": statuses})

    async def clear(self, _request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})


async def _params(request: Request) -> dict[str, Any]:
    body = await request.body()
    params: dict[str, Any] = dict(parse_qsl(request.url.query))
    if not body:
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        params.update(json.loads(body))
    else:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def build_app(recorder: Recorder) -> Starlette:
    return Starlette(
        routes=[
            Route("/_records", recorder.dump, methods=["GET"]),
            Route("/_stats", recorder.stats, methods=["GET"]),
            Route("/_reset", recorder.clear, methods=["POST"]),
            Route("/{path:path}", recorder.handle, methods=["GET", "POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--p429", type=float, default=0.0)
    parser.add_argument("--p5xx", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    app = build_app(Recorder(args.p429, args.p5xx, args.seed))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
