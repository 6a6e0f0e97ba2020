"""Issue 13 item 9: X-Forwarded-For is believed only from configured proxies.

The app runs under uvicorn configured exactly as ``triagebot serve`` does
(:func:`bot.cli.server_config`); failed logins are counted per email and client address.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.app import create_app
from bot.cli import server_config
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import seed

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _serve(database_url: str, model_path: Path, fake: FakeBotApi, trusted: str) -> Iterator[str]:
    settings = make_settings(
        database_url, model_path, telegram_api_base_url=fake.base_url, trusted_proxies=trusted
    )
    app = create_app(settings, run_worker=False)
    seed(app.state.services.engine)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        server_config(app, settings, "127.0.0.1", port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def direct(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[str]:
    yield from _serve(database_url, model_path, fake_bot_api, "")


@pytest.fixture
def proxied(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[str]:
    yield from _serve(database_url, model_path, fake_bot_api, "127.0.0.1")


def _fail_login(client: httpx.Client, forwarded_for: str) -> int:
    page = client.get("/console/login")
    match = CSRF_RE.search(page.text)
    assert match
    r = client.post(
        "/console/login",
        data={"email": "agent@t.test", "password": "wrong-password", "csrf_token": match[1]},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status_code


def test_a_forged_x_forwarded_for_does_not_reset_the_login_limiter(direct: str) -> None:
    with httpx.Client(base_url=direct) as client:
        statuses = [_fail_login(client, f"203.0.113.{i}") for i in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]


def test_a_configured_proxys_x_forwarded_for_names_the_client(proxied: str) -> None:
    with httpx.Client(base_url=proxied) as client:
        first = [_fail_login(client, "198.51.100.1") for _ in range(6)]
        other = _fail_login(client, "198.51.100.2")
    assert first[-1] == 429  # the same client behind the proxy is limited
    assert other == 401  # another client behind the same proxy is not


def test_serve_trusts_no_proxy_by_default() -> None:
    settings = make_settings("sqlite://", Path("unused"))
    config = server_config(object(), settings, "127.0.0.1", 8000)
    assert config.proxy_headers is False
