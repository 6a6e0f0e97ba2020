"""Issue 13 item 1: body limits on every route, and API tokens checked before the body.

The first two tests talk to the app over a real socket (uvicorn on loopback): they prove the
server answers 413 *without* reading the body, which an in-process client cannot show.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import create_app
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi, ServerThread
from tests.integration.desk_support import Desk, seeded_desk

LIMIT = 4096
IMPORT_LIMIT = 64 * 1024


@pytest.fixture
def server(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[int]:
    settings = make_settings(
        database_url, model_path, telegram_api_base_url=fake_bot_api.base_url, max_body_bytes=LIMIT
    )
    with ServerThread(create_app(settings, run_worker=False)) as thread:
        yield thread.port


@pytest.fixture
def desk(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Desk]:
    yield from seeded_desk(
        database_url,
        model_path,
        fake_bot_api,
        max_body_bytes=LIMIT,
        max_import_body_bytes=IMPORT_LIMIT,
    )


def _status(sock: socket.socket, timeout: float = 5.0) -> int:
    sock.settimeout(timeout)
    head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


@pytest.mark.parametrize(
    "path",
    ["/api/v1/handoffs/1/notes", "/webhooks/telegram", "/chat/api/messages", "/console/login"],
)
def test_a_declared_oversized_body_is_refused_413_without_being_read(
    server: int, path: str
) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: 200000000\r\n\r\n".encode()
        )
        # not one byte of the 200 MB is sent: the answer must come anyway
        assert _status(sock) == 413


def test_a_chunked_body_is_cut_off_with_413_soon_after_the_limit(server: int) -> None:
    chunk = b"x" * 1024
    sent = 0
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(
            b"POST /console/login HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while sent < 2000:  # 2 MB at most
            readable, _, _ = select.select([sock], [], [], 0.01 if sent > LIMIT // 1024 else 0)
            if readable:
                break
            try:
                sock.sendall(b"400\r\n" + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        assert _status(sock) == 413
    assert sent < 200  # stopped reading at about LIMIT, not at the end of the body


def test_the_api_refuses_a_request_without_a_token_before_parsing_its_body(desk: Desk) -> None:
    r = desk.client.post(
        "/api/v1/handoffs/1/notes",
        content=b'{"text": not json',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_bad_token_is_refused_before_the_body_is_parsed(desk: Desk) -> None:
    r = desk.client.post(
        "/api/v1/handoffs/1/notes",
        content=b"[" * 3000,
        headers={"Content-Type": "application/json", "Authorization": "Bearer tb_forged"},
    )
    assert r.status_code == 401


def test_the_usage_import_has_its_own_larger_limit(desk: Desk) -> None:
    rows = "".join(f"NOPE-{i},2026-01-01,1,1,1,1\n" for i in range(400))
    csv = "external_id,date,active_users,seats,logins,key_feature_events\n" + rows
    assert LIMIT < len(csv) < IMPORT_LIMIT
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {desk.tokens['admin']}"}
    ok = desk.client.post("/api/v1/usage:import", content=csv, headers=headers)
    assert ok.status_code == 422  # read and judged (unknown accounts), not refused for its size
    assert ok.json()["rejected"]
    too_big = desk.client.post("/api/v1/usage:import", content=csv * 20, headers=headers)
    assert too_big.status_code == 413


def test_other_api_routes_keep_the_default_limit(desk: Desk) -> None:
    r = desk.api("POST", "/handoffs/1/notes", "admin", json={"text": "x" * (LIMIT + 10)})
    assert r.status_code == 413
