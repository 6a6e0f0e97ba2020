"""Issue 16 item 4: who else is on a conversation, who is typing, and a reply to someone
else's conversation asks for confirmation (API and console)."""

from __future__ import annotations

from sqlmodel import Session, func, select

from handoff.models import Message
from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk
from tests.integration.test_console import VIP_CHAT as CONSOLE_VIP_CHAT
from tests.integration.test_console import Console, console  # noqa: F401 - the fixture


def _escalate(d: Desk) -> int:
    assert d.post(tg_text_update(VIP_CHAT, "I want to talk to a person")).json()["action"] == (
        "escalated"
    )
    return int(d.api("GET", "/handoffs", "agent").json()[0]["id"])


def _agent_messages(engine: object) -> int:
    with Session(engine) as s:  # type: ignore[arg-type]
        return int(s.exec(select(func.count()).where(Message.author == "agent")).one())


def test_presence_shows_who_else_is_viewing_and_typing(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    path = f"/handoffs/{handoff_id}/presence"
    assert app_desk.api("POST", path, "agent", json={}).json() == []
    r = app_desk.api("POST", path, "agent2", json={"typing": True})
    assert r.status_code == 200
    assert r.json() == [{"user_id": app_desk.ids["agent"], "name": "Alan Agent", "typing": False}]
    seen = app_desk.api("POST", path, "agent", json={"typing": False}).json()
    assert seen == [{"user_id": app_desk.ids["agent2"], "name": "Grace Agent", "typing": True}]
    # a CSM of another account cannot see (or probe) the conversation
    assert app_desk.api("POST", path, "csm2", json={}).status_code == 404


def test_an_api_reply_to_someone_elses_handoff_needs_confirm(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent")
    before = _agent_messages(app_desk.engine)
    path = f"/handoffs/{handoff_id}/reply"
    r = app_desk.api("POST", path, "agent2", json={"text": "Grace here"})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"handoff {handoff_id} is assigned to Alan Agent; confirm to reply anyway"
    )
    assert _agent_messages(app_desk.engine) == before
    r = app_desk.api("POST", path, "agent2", json={"text": "Grace here", "confirm": True})
    assert r.status_code == 201 and r.json()["author_user_id"] == app_desk.ids["agent2"]
    h = app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()
    assert h["assignee_id"] == app_desk.ids["agent"]  # still Alan's
    app_desk.fake.wait_for(lambda f: "Grace here" in f.texts(VIP_CHAT))


def test_a_console_reply_to_someone_elses_handoff_asks_to_confirm(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = console.escalate(CONSOLE_VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    console.login("agent2")
    before = _agent_messages(console.engine)
    r = console.act(handoff_id, "reply", text="Grace <b>here</b>")
    assert r.status_code == 409
    assert 'id="confirm-reply"' in r.text and "Alan Agent owns this conversation" in r.text
    assert "Grace &lt;b&gt;here&lt;/b&gt;" in r.text  # the reply, shown to confirm, as text
    assert _agent_messages(console.engine) == before
    r = console.act(handoff_id, "reply", text="Grace <b>here</b>", confirm="1")
    assert r.status_code == 303
    assert _agent_messages(console.engine) == before + 1
    assert console.handoff(handoff_id).assignee_id == console.ids["agent"]
