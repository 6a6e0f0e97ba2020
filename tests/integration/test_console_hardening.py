"""Issue 13 items 8, 10 and 11: console inputs that answered 500, and session revocation.

A NUL character in a form field (PostgreSQL refuses it) and ids past the 32-bit id columns
(the driver overflows at 2**63) are refused with a 4xx, and nothing is written. Logging out
or deactivating a user revokes their sessions by id, so a cookie copied in the same second
dies too.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from bot.app import create_app
from bot.web.sessions import COOKIE_NAME
from handoff.models import Message, User
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import PLAIN_CHAT, VIP_CHAT, Console, seed
from tests.integration.test_console_admin import FAQ_FILE, Admin
from tests.integration.test_console_admin import _start as start_admin

HUGE = [2**31, 2**63, 10**30]


@pytest.fixture
def console(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Console]:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    with TestClient(create_app(settings)) as client:
        c = Console(client, fake_bot_api, seed(client.app.state.services.engine))  # type: ignore[attr-defined]
        c.customer(VIP_CHAT, "/start vip-token-123")
        c.customer(PLAIN_CHAT, "/start plain-token-123")
        fake_bot_api.wait_for(lambda f: f.texts(VIP_CHAT) and f.texts(PLAIN_CHAT))
        yield c


def _messages(c: Console) -> int:
    with Session(c.engine) as s:
        return int(s.exec(select(func.count()).select_from(Message)).one())


@pytest.mark.parametrize("action", ["note", "reply"])
def test_a_nul_in_a_note_or_reply_is_refused_and_not_stored(console: Console, action: str) -> None:
    handoff = console.escalate(VIP_CHAT)
    console.login("agent")
    before = _messages(console)
    r = console.act(handoff, action, text="hello\x00world")
    assert r.status_code == 422
    assert "NUL" in r.text
    assert _messages(console) == before


def test_a_nul_in_the_login_email_is_refused_with_a_4xx(console: Console) -> None:
    token = console.csrf()
    r = console.client.post(
        "/console/login",
        data={"email": "agent\x00@t.test", "password": "x" * 10, "csrf_token": token},
        follow_redirects=False,
    )
    assert 400 <= r.status_code < 500


def test_a_nul_in_a_new_users_name_is_refused_and_nothing_created(console: Console) -> None:
    console.login("admin")
    token = console.csrf("/console/admin")
    r = console.client.post(
        "/console/admin/users",
        data={
            "csrf_token": token,
            "email": "new@t.test",
            "name": "New\x00Person",
            "role": "agent",
            "password": "long-enough-password",
        },
        follow_redirects=False,
    )
    assert r.status_code == 422
    with Session(console.engine) as s:
        assert s.exec(select(User).where(User.email == "new@t.test")).first() is None


@pytest.mark.parametrize("big", HUGE)
def test_console_ids_past_the_id_columns_get_a_4xx(console: Console, big: int) -> None:
    console.login("admin")
    token = console.csrf("/console")
    gets = [f"/console/handoffs/{big}", f"/console/handoffs/{big}/updates.json"]
    posts = [
        f"/console/handoffs/{big}/{action}"
        for action in ("claim", "release", "transfer", "resolve", "return-to-bot", "reply", "note")
    ] + [
        f"/console/alerts/{big}/ack",
        f"/console/admin/users/{big}/role",
        f"/console/admin/users/{big}/active",
        f"/console/admin/users/{big}/token",
    ]
    for path in gets:
        assert console.client.get(path).status_code in (404, 422), path
    for path in posts:
        r = console.client.post(
            path, data={"csrf_token": token, "text": "x"}, follow_redirects=False
        )
        assert r.status_code in (404, 422), path


def test_a_version_or_user_id_past_the_id_columns_is_refused_in_a_form(console: Console) -> None:
    handoff = console.escalate(VIP_CHAT)
    console.login("agent")
    r = console.act(handoff, "claim", version=str(2**63))
    assert r.status_code == 303  # taken without the version check, not a 500
    r = console.act(handoff, "transfer", to_user_id=str(2**63))
    assert r.status_code == 303
    assert console.handoff(handoff).assignee_id == console.ids["agent"]


def test_logout_in_the_same_second_kills_a_copied_cookie(console: Console) -> None:
    for _ in range(3):  # no waiting: login, copy and logout fall in the same second
        console.login("agent")
        copied = console.client.cookies.get(COOKIE_NAME)
        token = console.csrf("/console")
        console.client.post("/console/logout", data={"csrf_token": token})
        console.client.cookies.set(COOKIE_NAME, copied or "", path="/console")
        assert console.client.get("/console", follow_redirects=False).status_code == 303
        assert console.client.get("/console/queue.json").status_code == 401
    console.client.cookies.clear()
    console.login("agent")  # and logging in again at once works
    assert console.client.get("/console", follow_redirects=False).status_code == 200


def test_deactivation_in_the_same_second_kills_the_users_session(console: Console) -> None:
    console.login("agent")
    agent_cookie = console.client.cookies.get(COOKIE_NAME)
    console.login("admin")
    token = console.csrf("/console/admin")
    r = console.client.post(
        f"/console/admin/users/{console.ids['agent']}/active",
        data={"csrf_token": token, "active": "0"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    console.client.post(
        f"/console/admin/users/{console.ids['agent']}/active",
        data={"csrf_token": token, "active": "1"},
        follow_redirects=False,
    )  # reactivated at once: the old session still must not come back
    console.client.cookies.clear()
    console.client.cookies.set(COOKIE_NAME, agent_cookie or "", path="/console")
    assert console.client.get("/console/queue.json").status_code == 401


@pytest.fixture
def admin(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Admin]:
    yield from start_admin(database_url, model_path, fake_bot_api, tmp_path)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("{% for i in range(99999999) %}x{% endfor %}", "range() of more than"),
        ("{{ 'x' * 100000000 }}", "too long"),
        ("{% set a = 'x' * 9999 %}{% set a = a ~ a ~ a %}{% set a = a ~ a %}{{ a }}", "longer"),
        ("{% for i in range(999) %}{{ reset_url }}{{ reset_url }}{% endfor %}", "longer than"),
        ("{{ 'x'|center(1000000000) }}", "No filter named 'center'"),
        ("Hello {{ customer_nmae }}, see {{ reset_url }} {{ pln }}", "customer_nmae, pln"),
    ],
    ids=["huge-range", "huge-repeat", "doubling", "huge-output", "padding", "unknown-names"],
)
def test_a_costly_or_misspelt_faq_template_is_refused_naming_why(
    admin: Admin, answer: str, why: str
) -> None:
    file = admin.faq / FAQ_FILE
    saved = file.read_bytes()
    admin.console.login("admin")
    r = admin.post("/console/admin/faq/password_reset", answer=answer)
    assert r.status_code == 422
    assert why in html.unescape(r.text)
    assert file.read_bytes() == saved
