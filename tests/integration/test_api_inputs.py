"""Issue 13 item 4: inputs the README promises a 422 for, which answered 500.

Each is refused with a 422 that can be encoded (the input is echoed safely), and nothing is
written: a lone surrogate, NaN and Infinity, attributes nested far too deep.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, func, select

from handoff.models import Account, Message
from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk


def _handoff(d: Desk) -> int:
    d.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    r = d.api("GET", "/handoffs", "admin")
    return int(r.json()[0]["id"])


def _raw(d: Desk, method: str, path: str, body: str) -> Any:
    headers = {"Authorization": f"Bearer {d.tokens['admin']}", "Content-Type": "application/json"}
    return d.client.request(method, f"/api/v1{path}", content=body.encode(), headers=headers)


def test_a_note_with_a_lone_surrogate_gets_a_422_and_is_not_stored(app_desk: Desk) -> None:
    handoff = _handoff(app_desk)
    with Session(app_desk.engine) as s:
        before = s.exec(select(func.count()).select_from(Message)).one()
    r = _raw(app_desk, "POST", f"/handoffs/{handoff}/notes", '{"text": "a \\ud800 b"}')
    assert r.status_code == 422, r.text
    assert "surrogate" in r.text
    with Session(app_desk.engine) as s:
        assert s.exec(select(func.count()).select_from(Message)).one() == before


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_arr_gets_a_422_and_is_not_stored(app_desk: Desk, value: str) -> None:
    r = _raw(app_desk, "PUT", "/accounts/NEW-1", f'{{"name": "New", "arr": {value}}}')
    assert r.status_code == 422, r.text
    json.loads(r.text)  # a body any JSON parser reads (no bare NaN in it)
    with Session(app_desk.engine) as s:
        assert s.exec(select(Account).where(Account.external_id == "NEW-1")).first() is None


def test_attributes_nested_too_deep_get_a_422_before_anything_is_committed(
    app_desk: Desk,
) -> None:
    nested: Any = "leaf"
    for _ in range(900):
        nested = {"a": nested}
    body = json.dumps({"name": "Globex", "attributes": {"deep": nested}})
    r = _raw(app_desk, "PUT", "/accounts/VIP-1", body)
    assert r.status_code == 422, r.text
    assert "nested" in r.text
    got = app_desk.api("GET", "/accounts/VIP-1", "admin")
    assert got.status_code == 200
    assert "deep" not in got.json()["attributes"]


def test_attributes_of_reasonable_depth_are_kept(app_desk: Desk) -> None:
    body = {"name": "Globex", "attributes": {"crm": {"segment": {"region": ["emea", 1]}}}}
    r = app_desk.api("PUT", "/accounts/VIP-1", "admin", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == body["attributes"]
