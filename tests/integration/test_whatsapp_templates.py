# ruff: noqa: F811  (the WhatsApp fixtures are imported, then used as parameters)
"""Issue 16 item 5: approved WhatsApp templates outside the 24-hour window, sent through the
outbox to the (fake) Graph API and tracked like any reply; from the API and the console."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from handoff import users
from handoff.models import Handoff, Message, OutboxEntry, User, utcnow
from tests.integration.test_whatsapp import (  # noqa: F401 (fixtures)
    WhatsAppService,
    fake_graph_server,
    wa,
    wa_change,
    wa_notification,
    wa_status,
)

CUSTOMER = "15550001234"
PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _staff(wa: WhatsAppService) -> dict[str, str]:
    with Session(wa.services.engine) as s:
        agent = User(email="agent@t.test", name="Alan Agent", role="agent")
        agent.password_hash = users.hash_password(PASSWORD)
        s.add(agent)
        s.flush()
        token = users.issue_api_token(s, agent)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def _escalated(wa: WhatsAppService) -> int:
    wa.say(CUSTOMER, "I want to talk to a person")
    with Session(wa.services.engine) as s:
        return max(s.exec(select(Handoff.id)).all())  # type: ignore[type-var]


def _close_window(wa: WhatsAppService) -> None:
    with Session(wa.services.engine) as s:
        for m in s.exec(select(Message).where(Message.direction == "inbound")).all():
            m.created_at = utcnow() - timedelta(hours=25)
            s.add(m)
        s.commit()


def _post(wa: WhatsAppService, path: str, headers: dict[str, str], body: Any) -> Any:
    return wa.client.post(f"/api/v1{path}", json=body, headers=headers)


def test_the_window_is_shown_and_a_template_reply_leaves_as_a_cloud_api_template(
    wa: WhatsAppService,
) -> None:
    auth = _staff(wa)
    handoff_id = _escalated(wa)
    window = wa.client.get(f"/api/v1/handoffs/{handoff_id}/window", headers=auth).json()
    assert window["open"] is True and 23 * 3600 < window["seconds_left"] <= 24 * 3600
    _close_window(wa)
    window = wa.client.get(f"/api/v1/handoffs/{handoff_id}/window", headers=auth).json()
    assert window == {**window, "open": False, "seconds_left": 0.0}

    wa.fake.approve("support_follow_up", "en_US", 2)
    body = {
        "name": "support_follow_up",
        "language": "en_US",
        "parameters": ["Vera", "your  invoice\nquestion"],
    }
    sent = _post(wa, f"/handoffs/{handoff_id}/template-reply", auth, body)
    assert sent.status_code == 201, sent.text
    assert sent.json()["kind"] == "template"
    assert sent.json()["text"].startswith("Hi Vera, this is the support team following up on your")
    wa.fake.wait_for(lambda f: f.templates(CUSTOMER))
    call = next(c for c in wa.fake.delivered(CUSTOMER) if c.body["type"] == "template")
    assert call.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "template",
        "template": {
            "name": "support_follow_up",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Vera"},
                        {"type": "text", "text": "your invoice question"},
                    ],
                }
            ],
        },
    }
    # tracked like any reply: the wamid is recorded and receipts move it forward
    entries = wa.wait_for_outbox(
        lambda es: any(e.payload.get("template") and e.status == "sent" for e in es)
    )
    entry = next(e for e in entries if e.payload.get("template"))
    assert entry.provider_message_id == call.wamid and entry.message_id == sent.json()["id"]
    wa.post(
        wa_notification([wa_change(statuses=[wa_status(call.wamid or "", "delivered", CUSTOMER)])])
    )
    with Session(wa.services.engine) as s:
        assert s.get(OutboxEntry, entry.id).delivery_status == "delivered"  # type: ignore[union-attr]
        handoff = s.get(Handoff, handoff_id)
    assert handoff is not None and handoff.first_response_at is not None


def test_wrong_parameters_or_an_unknown_template_are_422s_naming_the_field(
    wa: WhatsAppService,
) -> None:
    auth = _staff(wa)
    handoff_id = _escalated(wa)
    path = f"/handoffs/{handoff_id}/template-reply"
    cases = [
        ({"name": "support_follow_up", "language": "en_US", "parameters": ["Vera"]}, "parameters:"),
        (
            {"name": "support_follow_up", "language": "en_US", "parameters": ["Vera", " "]},
            "parameters[1]",
        ),
        ({"name": "support_follow_up", "language": "de_DE", "parameters": ["a", "b"]}, "template:"),
        ({"name": "no_such", "language": "en_US", "parameters": []}, "template:"),
    ]
    before = len(wa.outbox())
    for body, named in cases:
        r = _post(wa, path, auth, body)
        assert r.status_code == 422 and named in r.json()["detail"], r.text
    assert len(wa.outbox()) == before
    with Session(wa.services.engine) as s:
        assert s.get(Handoff, handoff_id).status == "waiting"  # type: ignore[union-attr]


def test_a_template_meta_refuses_is_flagged_as_not_delivered(wa: WhatsAppService) -> None:
    auth = _staff(wa)
    handoff_id = _escalated(wa)
    _close_window(wa)
    body = {"name": "support_resolved_check", "language": "en_US", "parameters": ["Vera"]}
    sent = _post(wa, f"/handoffs/{handoff_id}/template-reply", auth, body)  # not approved at Meta
    assert sent.status_code == 201
    wa.wait_for_outbox(lambda es: any(e.payload.get("template") and e.status == "dead" for e in es))
    detail = wa.client.get(f"/api/v1/handoffs/{handoff_id}", headers=auth).json()
    line = next(m for m in detail["transcript"] if m["id"] == sent.json()["id"])
    assert line["undelivered"] and "132001" in line["undelivered"]


def test_the_console_offers_templates_once_the_window_closed(wa: WhatsAppService) -> None:
    _staff(wa)
    handoff_id = _escalated(wa)
    c = wa.client
    token = CSRF_RE.search(c.get("/console/login").text).group(1)  # type: ignore[union-attr]
    c.post(
        "/console/login", data={"email": "agent@t.test", "password": PASSWORD, "csrf_token": token}
    )
    page = c.get(f"/console/handoffs/{handoff_id}").text
    assert "left to reply freely" in page and 'id="reply-form"' in page
    _close_window(wa)
    page = c.get(f"/console/handoffs/{handoff_id}").text
    assert "WhatsApp window: closed" in page and 'id="reply-form"' not in page
    assert 'value="support_follow_up"' in page
    wa.fake.approve("support_resolved_check", "en_US", 1)
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    form = {
        "csrf_token": token,
        "name": "support_resolved_check",
        "language": "en_US",
        "parameter": "Vera",
    }
    r = c.post(f"/console/handoffs/{handoff_id}/template-reply", data=form, follow_redirects=False)
    assert r.status_code == 303
    wa.fake.wait_for(lambda f: f.templates(CUSTOMER))
    assert wa.fake.templates(CUSTOMER)[0]["components"][0]["parameters"] == [
        {"type": "text", "text": "Vera"}
    ]
