"""Issue 16 item 3: canned replies (personal and shared, rendered with the conversation's
variables, counted when used, managed by the API and the console)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.app import create_app
from bot.settings import ROOT
from handoff.models import CannedReply, CannedReplyUse, Handoff
from tests.conftest import make_settings
from tests.factories import tg_text_update
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.desk_support import VIP_CHAT, Desk, seeded_desk
from tests.integration.test_console import VIP_CHAT as CONSOLE_VIP_CHAT
from tests.integration.test_console import Console, seed

BODY = "Hi {{ contact_name }}, {{ csm_name }} from {{ account_name }} will call. {{ status_url }}"


@pytest.fixture
def desk(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Desk]:
    yield from seeded_desk(database_url, model_path, fake_bot_api)


def _vip_handoff(d: Desk) -> int:
    d.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    with Session(d.engine) as s:
        return max(s.exec(select(Handoff.id)).all())  # type: ignore[type-var]


def test_agents_keep_personal_replies_and_only_admins_change_shared_ones(desk: Desk) -> None:
    shared = desk.api(
        "POST", "/canned-replies", "admin", json={"title": "Callback", "body": BODY, "shared": True}
    )
    assert shared.status_code == 201 and shared.json()["shared"] is True
    mine = desk.api("POST", "/canned-replies", "agent", json={"title": "Mine", "body": "Thanks!"})
    assert mine.status_code == 201 and mine.json()["shared"] is False
    refused = desk.api(
        "POST", "/canned-replies", "agent", json={"title": "X", "body": "y", "shared": True}
    )
    assert refused.status_code == 403
    sid, mid = shared.json()["id"], mine.json()["id"]

    assert {r["title"] for r in desk.api("GET", "/canned-replies", "agent").json()} == {
        "Callback",
        "Mine",
    }
    assert [r["title"] for r in desk.api("GET", "/canned-replies", "agent2").json()] == ["Callback"]
    assert [
        r["title"] for r in desk.api("GET", "/canned-replies?q=call%20will", "agent").json()
    ] == ["Callback"]
    # another person's personal reply is not found, whatever the verb
    assert desk.api("GET", f"/canned-replies/{mid}", "agent2").status_code == 404
    assert (
        desk.api("PATCH", f"/canned-replies/{mid}", "agent2", json={"title": "Z"}).status_code
        == 404
    )
    assert desk.api("DELETE", f"/canned-replies/{mid}", "admin").status_code == 404
    # the shared one: visible to agents, changed by admins only
    assert (
        desk.api("PATCH", f"/canned-replies/{sid}", "agent", json={"title": "Z"}).status_code == 403
    )
    assert desk.api("DELETE", f"/canned-replies/{sid}", "agent").status_code == 403
    r = desk.api(
        "PATCH", f"/canned-replies/{mid}", "agent", json={"body": "Thanks, {{ contact_name }}!"}
    )
    assert r.status_code == 200 and r.json()["body"] == "Thanks, {{ contact_name }}!"
    assert desk.api("DELETE", f"/canned-replies/{mid}", "agent").status_code == 204
    with Session(desk.engine) as s:
        assert [c.title for c in s.exec(select(CannedReply)).all()] == ["Callback"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"title": "A", "body": "Hi {{ nobody }}"}, "unknown variable(s) nobody"),
        (
            {"title": "A", "body": "Hi {% if contact_name %}"},
            "body: the answer template is not valid",
        ),
        ({"title": "A", "body": "{{ ''.__class__ }}"}, "body:"),
        ({"title": "   ", "body": "Hi"}, "title: is empty"),
    ],
)
def test_a_bad_canned_reply_is_refused_naming_the_field_and_nothing_is_saved(
    desk: Desk, body: dict[str, str], named: str
) -> None:
    r = desk.api("POST", "/canned-replies", "agent", json=body)
    assert r.status_code == 422 and named in r.json()["detail"], r.text
    with Session(desk.engine) as s:
        assert s.exec(select(CannedReply)).all() == []


def test_a_canned_reply_renders_with_the_conversation_and_its_use_is_counted(desk: Desk) -> None:
    handoff_id = _vip_handoff(desk)
    created = desk.api(
        "POST", "/canned-replies", "admin", json={"title": "Callback", "body": BODY, "shared": True}
    )
    cid = created.json()["id"]
    rendered = desk.api(
        "POST", f"/canned-replies/{cid}/render", "agent", json={"handoff_id": handoff_id}
    )
    expected = "Hi Vera VIP, Cora CSM from Globex will call. https://status.example.com"
    assert rendered.status_code == 200 and rendered.json()["text"] == expected
    sent = desk.api(
        "POST",
        f"/handoffs/{handoff_id}/reply",
        "agent",
        json={"text": rendered.json()["text"], "canned_reply_id": cid},
    )
    assert sent.status_code == 201, sent.text
    desk.fake.wait_for(lambda f: expected in f.texts(VIP_CHAT))
    assert desk.api("GET", f"/canned-replies/{cid}", "agent").json()["uses"] == 1
    with Session(desk.engine) as s:
        use = s.exec(select(CannedReplyUse)).one()
    assert use.message_id == sent.json()["id"] and use.user_id == desk.ids["agent"]
    # a canned id the agent may not use: refused, nothing sent or counted
    personal = desk.api(
        "POST", "/canned-replies", "agent2", json={"title": "P", "body": "x"}
    ).json()["id"]
    other = desk.api(
        "POST",
        f"/handoffs/{handoff_id}/reply",
        "agent",
        json={"text": "hello", "canned_reply_id": personal},
    )
    assert other.status_code == 404
    assert not any(t == "hello" for t in desk.fake.texts(VIP_CHAT))
    assert desk.api("GET", f"/canned-replies/{cid}", "agent").json()["uses"] == 1


# ------------------------------------------------------------------------------ console
@pytest.fixture
def console(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Console]:
    hours = tmp_path / "hours.yaml"
    shutil.copy(ROOT / "data" / "hours.yaml", hours)
    settings = make_settings(
        database_url, model_path, telegram_api_base_url=fake_bot_api.base_url, hours_path=hours
    )
    with TestClient(create_app(settings)) as client:
        c = Console(client, fake_bot_api, seed(client.app.state.services.engine))  # type: ignore[attr-defined]
        c.customer(CONSOLE_VIP_CHAT, "/start vip-token-123")
        fake_bot_api.wait_for(lambda f: f.texts(CONSOLE_VIP_CHAT))
        yield c


def test_the_reply_box_offers_canned_replies_and_posting_one_counts_it(console: Console) -> None:
    c = console
    handoff_id = c.escalate(CONSOLE_VIP_CHAT)
    c.login("agent")
    token = c.csrf("/console/canned-replies")
    r = c.client.post(
        "/console/canned-replies",
        data={"csrf_token": token, "title": "Callback", "body": BODY},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = c.client.get(f"/console/handoffs/{handoff_id}").text
    rendered = "Hi Vera VIP, Cora CSM from Globex will call. https://status.example.com"
    assert f'data-text="{rendered}"' in page and 'id="canned-picker"' in page
    cid = re.search(r'<li data-id="(\d+)" data-title="Callback"', page).group(1)  # type: ignore[union-attr]
    assert c.act(handoff_id, "reply", text=rendered, canned_reply_id=cid).status_code == 303
    c.fake.wait_for(lambda f: rendered in f.texts(CONSOLE_VIP_CHAT))
    assert 'id="canned-usage-table"' in c.client.get("/console/dashboard").text
    with Session(c.engine) as s:
        assert s.exec(select(CannedReply)).one().uses == 1


def test_the_admin_hours_form_refuses_bad_input_naming_the_field_and_saves_nothing(
    console: Console,
) -> None:
    c = console
    path = Path(c.client.app.state.services.settings.hours_path)  # type: ignore[attr-defined]
    original = path.read_bytes()
    c.login("admin")
    assert 'id="hours-form"' in c.client.get("/console/admin").text

    def save(**form: str) -> str:
        token = c.csrf("/console/admin")
        fields = {"timezone": "Europe/Berlin", "holidays": "", "always": "1", **form}
        r = c.client.post(
            "/console/admin/hours", data={"csrf_token": token, **fields}, follow_redirects=False
        )
        assert r.status_code == 303
        return c.client.get(r.headers["location"]).text

    assert "Not saved: business hours is not valid: weekly.mon" in save(mon="22:00-06:00")
    assert "holidays overlap" in save(
        mon="09:00-17:00", holidays="2026-12-24..2026-12-26\n2026-12-25 Xmas"
    )
    assert "holidays line 1" in save(holidays="24.12.2026 Christmas")
    assert "timezone" in save(timezone="Mars/Olympus", mon="09:00-17:00")
    assert path.read_bytes() == original
    page = save(mon="09:00-12:00, 13:00-17:00", holidays="2026-12-24..2026-12-26 Christmas")
    assert "Business hours saved (time zone Europe/Berlin)." in page
    assert 'value="09:00-12:00, 13:00-17:00"' in page
    hours = c.client.app.state.services.models.config().hours  # type: ignore[attr-defined]
    assert hours.weekly == {"mon": ["09:00-12:00", "13:00-17:00"]} and not hours.always_open
