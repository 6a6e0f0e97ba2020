"""Issue 14 item 10: resolving while the customer's last message has no reply asks first."""

from __future__ import annotations

from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk
from tests.integration.test_console import VIP_CHAT as CONSOLE_VIP_CHAT
from tests.integration.test_console import Console, console  # noqa: F401


def test_resolving_an_unanswered_customer_shows_a_confirmation_and_resolves_nothing(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = console.escalate(CONSOLE_VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    r = console.act(handoff_id, "resolve", resolution_code="answered", ask_csat="1")
    assert r.status_code == 409
    assert "last message has no reply yet" in r.text and 'name="confirm" value="1"' in r.text
    assert console.handoff(handoff_id).status == "assigned"


def test_a_confirmed_resolve_of_an_unanswered_customer_resolves(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = console.escalate(CONSOLE_VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    r = console.act(handoff_id, "resolve", resolution_code="answered", confirm="1")
    assert r.status_code == 303
    assert console.handoff(handoff_id).status == "resolved"


def test_resolving_after_a_reply_needs_no_confirmation(console: Console) -> None:  # noqa: F811
    handoff_id = console.escalate(CONSOLE_VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "reply", text="Done: your seats are added.")
    r = console.act(handoff_id, "resolve", resolution_code="answered")
    assert r.status_code == 303
    assert console.handoff(handoff_id).status == "resolved"


def test_api_resolve_without_confirm_of_an_unanswered_customer_is_a_409(app_desk: Desk) -> None:
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    [row] = app_desk.api("GET", "/handoffs", "agent").json()
    app_desk.api("POST", f"/handoffs/{row['id']}/claim", "agent")
    body = {"resolution_code": "answered", "confirm": False}
    r = app_desk.api("POST", f"/handoffs/{row['id']}/resolve", "agent", json=body)
    assert r.status_code == 409
    assert app_desk.api("GET", f"/handoffs/{row['id']}", "agent").json()["status"] == "assigned"
