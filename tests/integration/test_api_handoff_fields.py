"""Issue 14 item 18: the REST API's detail, filters and account health say what they should."""

from __future__ import annotations

from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk


def test_handoff_detail_has_the_last_customer_text_the_list_has(app_desk: Desk) -> None:
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person about seats"))
    [row] = app_desk.api("GET", "/handoffs", "agent").json()
    detail = app_desk.api("GET", f"/handoffs/{row['id']}", "agent").json()
    assert row["last_customer_text"] == "I want to talk to a person about seats"
    assert detail["last_customer_text"] == row["last_customer_text"]


def test_an_unknown_status_filter_is_refused_with_422(app_desk: Desk) -> None:
    r = app_desk.api("GET", "/handoffs", "agent", params={"status": "open"})
    assert r.status_code == 422


def test_returned_to_bot_is_a_status_the_filter_accepts(app_desk: Desk) -> None:
    r = app_desk.api("GET", "/handoffs", "agent", params={"status": "returned_to_bot"})
    assert r.status_code == 200 and r.json() == []


def test_account_detail_exposes_the_health_reasons(app_desk: Desk) -> None:
    body = {"name": "Globex", "attributes": {"health_factors": ["active users -45% in 30 days"]}}
    assert app_desk.api("PUT", "/accounts/VIP-1", "admin", json=body).status_code == 200
    account = app_desk.api("GET", "/accounts/VIP-1", "agent").json()
    assert account["health_factors"] == ["active users -45% in 30 days"]
