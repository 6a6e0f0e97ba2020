"""Issue 8: the authorization matrix of the REST API — every endpoint × every kind of caller.

Callers: no token, a bad token, admin, agent, the account's own CSM, another CSM. Denied
calls must change nothing; allowed calls must not be refused (they may still answer 409/422
for state reasons, which is not an authorization decision).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, func, select

from handoff.models import (
    Account,
    ChannelIdentity,
    Contact,
    Conversation,
    Handoff,
    Message,
    OutboxEntry,
)
from tests.factories import tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk

DENIED = {401, 403, 404}

# (method, path, json body, who may call it)
STAFF = {"admin", "agent", "csm"}
ADMIN = {"admin"}
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/handoffs/{h}", None, STAFF),
    ("POST", "/handoffs/{h}/notes", {"text": "note"}, STAFF),
    ("POST", "/handoffs/{h}/claim", None, STAFF),
    ("POST", "/handoffs/{h}/reply", {"text": "hello"}, STAFF),
    ("POST", "/handoffs/{h}/release", {}, STAFF),
    ("POST", "/handoffs/{h}/transfer", {"to_user_id": 0}, STAFF),
    ("POST", "/handoffs/{h}/resolve", {"resolution_code": "fixed"}, STAFF),
    ("POST", "/handoffs/{h}/return-to-bot", {}, STAFF),
    ("POST", "/handoffs/{h}/link-contact", {"email": "vera@globex.test"}, STAFF),
    ("GET", "/accounts/VIP-1", None, STAFF),
    ("PUT", "/accounts/VIP-1", {"name": "Globex", "tier": "enterprise"}, ADMIN),
    ("PUT", "/contacts", {"email": "new@globex.test", "account_external_id": "VIP-1"}, ADMIN),
    ("DELETE", "/contacts/{c}", None, ADMIN),
]
LISTS = ["/handoffs", "/handoffs?status=resolved", "/handoffs?mine=true"]


def _state(engine: Any) -> tuple[Any, ...]:
    with Session(engine) as s:
        h = s.exec(select(Handoff)).one()
        return (
            h.status,
            h.version,
            h.assignee_id,
            s.exec(select(func.count()).select_from(Message)).one(),
            s.exec(select(func.count()).select_from(OutboxEntry)).one(),
            s.exec(select(Account.name).where(Account.external_id == "VIP-1")).one(),
            s.exec(select(func.count()).select_from(Contact)).one(),
        )


def _call(d: Desk, who: str, method: str, path: str, body: Any) -> Any:
    if who == "none":
        return d.client.request(method, f"/api/v1{path}", json=body)
    if who == "bad":
        return d.client.request(
            method, f"/api/v1{path}", json=body, headers={"Authorization": "Bearer tb_forged"}
        )
    return d.api(method, path, who, json=body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
def test_denied_callers_get_refused_and_change_nothing(
    app_desk: Desk, endpoint: tuple[str, str, dict[str, Any] | None, set[str]]
) -> None:
    method, template, body, allowed = endpoint
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    with Session(app_desk.engine) as s:
        handoff_id = s.exec(select(Handoff.id)).one()
        contact_id = s.exec(select(Contact.id).where(Contact.email == "vera@globex.test")).one()
    path = template.format(h=handoff_id, c=contact_id)
    if body and "to_user_id" in body:
        body = {"to_user_id": app_desk.ids["agent2"]}
    before = _state(app_desk.engine)
    expected = {"none": 401, "bad": 401, "csm2": 404 if "{h}" in template else None}
    for who in ("none", "bad", "csm2", "agent", "csm", "admin"):
        if who in allowed:
            continue
        response = _call(app_desk, who, method, path, body)
        want = expected.get(who) or 403
        if who == "csm2" and template.startswith("/accounts") and method == "GET":
            want = 404
        assert response.status_code == want, (who, method, path, response.text)
    assert _state(app_desk.engine) == before
    # and an allowed caller is not refused
    for who in sorted(allowed):
        response = _call(app_desk, who, method, path, body)
        assert response.status_code not in DENIED, (who, method, path, response.text)
        break


@pytest.mark.parametrize("path", LISTS)
def test_lists_need_a_token_and_are_scoped(app_desk: Desk, path: str) -> None:
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    assert _call(app_desk, "none", "GET", path, None).status_code == 401
    assert _call(app_desk, "bad", "GET", path, None).status_code == 401
    assert app_desk.api("GET", path, "csm2").json() == []
    for who in ("admin", "agent", "csm"):
        assert app_desk.api("GET", path, who).status_code == 200


def _links(engine: Any) -> tuple[Any, ...]:
    with Session(engine) as s:
        h = s.exec(select(Handoff)).one()
        conversation = s.get(Conversation, h.conversation_id)
        assert conversation is not None
        identity = s.get(ChannelIdentity, conversation.identity_id)
        assert identity is not None
        return h.account_id, h.version, conversation.contact_id, identity.contact_id


def test_a_csm_cannot_link_a_handoff_to_another_csms_contact(app_desk: Desk) -> None:
    """Issue 13 item 2: refused, nothing moved, and answered like an unknown email."""
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    with Session(app_desk.engine) as s:
        handoff_id = s.exec(select(Handoff.id)).one()
    before = _links(app_desk.engine)
    path = f"/handoffs/{handoff_id}/link-contact"
    other = app_desk.api("POST", path, "csm", json={"email": "pat@hooli.test"})  # csm2's contact
    unknown = app_desk.api("POST", path, "csm", json={"email": "nobody@hooli.test"})
    assert other.status_code == unknown.status_code == 404
    assert other.json()["detail"].replace("pat@", "nobody@") == unknown.json()["detail"]
    assert _links(app_desk.engine) == before
    # the account's own contact may still be linked by its CSM
    own = app_desk.api("POST", path, "csm", json={"email": "vera@globex.test"})
    assert own.status_code == 200
