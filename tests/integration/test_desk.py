"""Issue 4: the handoff queue with CS context, escalation policy, CSM alerts and the REST API."""

from __future__ import annotations

import threading
from typing import Any

from sqlmodel import Session, func, select

from handoff import desk
from handoff.errors import Conflict
from handoff.models import Account, CsAlert, Handoff, OutboxEntry, User
from tests.factories import tg_text_update
from tests.integration.desk_support import CSM_CHAT, PLAIN_CHAT, VIP_CHAT, Desk


def _count(engine: Any, model: type, *where: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def test_vip_not_renewing_lands_p1_with_context_and_one_csm_alert(app_desk: Desk) -> None:
    r = app_desk.post(tg_text_update(VIP_CHAT, "we are thinking about not renewing our contract"))
    assert r.json()["action"] == "escalated"
    listed = app_desk.api("GET", "/handoffs", "agent").json()
    assert len(listed) == 1
    h = listed[0]
    assert h["priority"] == 1
    assert {"vip_account", "strategic_intent", "renewal_window"} <= set(h["reasons"])
    detail = app_desk.api("GET", f"/handoffs/{h['id']}", "agent").json()
    account = detail["context"]["account"]
    assert account["name"] == "Globex" and account["arr"] == 250_000
    assert account["next_qbr_date"] and account["renewal_date"]
    assert account["csm"]["name"] == "Cora CSM"
    assert detail["context"]["recent_contacts"]
    # the CSM hears about it once, on Telegram and on Slack, with the words and a link
    app_desk.fake.wait_for(lambda f: len(f.texts(CSM_CHAT)) == 1)
    alert = app_desk.fake.texts(CSM_CHAT)[0]
    assert "not renewing" in alert and "/console/handoffs/" in alert and "VIP" in alert
    app_desk.fake.wait_for(lambda f: len(app_desk.slack.texts()) == 1)
    # the customer writes again: same handoff, no second alert
    app_desk.post(tg_text_update(VIP_CHAT, "please call me back today"))
    app_desk.fake.wait_for(
        lambda f: _count(app_desk.engine, OutboxEntry, OutboxEntry.status == "pending") == 0
    )
    assert len(app_desk.fake.texts(CSM_CHAT)) == 1
    assert len(app_desk.slack.texts()) == 1
    assert _count(app_desk.engine, CsAlert) == 1


def test_plain_password_question_never_enters_the_queue(app_desk: Desk) -> None:
    r = app_desk.post(tg_text_update(PLAIN_CHAT, "how do I reset my password?"))
    assert r.json()["action"] == "answered"
    assert _count(app_desk.engine, Handoff) == 0
    assert app_desk.api("GET", "/handoffs", "agent").json() == []


def _escalate(app_desk: Desk, chat: int = VIP_CHAT) -> int:
    app_desk.post(tg_text_update(chat, "I want to talk to a person"))
    with Session(app_desk.engine) as s:
        return max(s.exec(select(Handoff.id)).all())  # type: ignore[type-var]


def test_twenty_concurrent_claims_produce_one_owner(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    with Session(app_desk.engine) as s:
        agents = [
            User(email=f"racer{i}@t.test", name=f"Racer {i}", role="agent") for i in range(20)
        ]
        s.add_all(agents)
        s.commit()
        principals = [desk.Principal.of(a) for a in agents]
    barrier = threading.Barrier(20)
    wins: list[int] = []
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def race(p: desk.Principal) -> None:
        with Session(app_desk.engine) as s:
            barrier.wait()
            try:
                desk.claim(s, p, handoff_id)
                s.commit()
                wins.append(p.user_id)
            except Conflict:
                s.rollback()
                conflicts.append(p.user_id)
            except BaseException as exc:  # anything else is a bug
                errors.append(exc)

    threads = [threading.Thread(target=race, args=(p,)) for p in principals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(wins) == 1 and len(conflicts) == 19
    with Session(app_desk.engine) as s:
        h = s.get(Handoff, handoff_id)
        assert h is not None and h.assignee_id == wins[0] and h.status == "assigned"


def test_agent_reply_reaches_the_customer_and_bot_stays_silent(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk, PLAIN_CHAT)
    app_desk.fake.wait_for(lambda f: len(f.texts(PLAIN_CHAT)) >= 2)
    before = len(app_desk.fake.texts(PLAIN_CHAT))
    assert app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent").status_code == 200
    r = app_desk.api(
        "POST",
        f"/handoffs/{handoff_id}/reply",
        "agent",
        json={"text": "Hi Pat, Alan here - looking at it now."},
    )
    assert r.status_code == 201
    app_desk.fake.wait_for(lambda f: "Alan here" in " ".join(f.texts(PLAIN_CHAT)))
    # a customer message while a person owns the conversation: stored, forwarded, no bot reply
    r = app_desk.post(tg_text_update(PLAIN_CHAT, "how do I reset my password?"))
    assert r.json()["action"] == "forwarded"
    app_desk.fake.wait_for(
        lambda f: _count(app_desk.engine, OutboxEntry, OutboxEntry.status == "pending") == 0
    )
    assert len(app_desk.fake.texts(PLAIN_CHAT)) == before + 1
    detail = app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()
    assert detail["transcript"][-1]["text"] == "how do I reset my password?"
    assert detail["first_response_at"] is not None


def test_second_agent_gets_conflict_and_must_confirm_a_reply(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    assert app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent").status_code == 200
    r = app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent2")
    assert r.status_code == 409 and "taken" in r.json()["detail"]
    # issue 16: a reply to someone else's conversation asks for confirmation first
    r = app_desk.api("POST", f"/handoffs/{handoff_id}/reply", "agent2", json={"text": "hi"})
    assert r.status_code == 409 and "Alan Agent" in r.json()["detail"]
    assert "confirm" in r.json()["detail"]


def test_notes_resolve_with_code_csat_and_history(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk, PLAIN_CHAT)
    app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent")
    r = app_desk.api(
        "POST",
        f"/handoffs/{handoff_id}/notes",
        "agent",
        json={"text": "customer is on the old SSO config"},
    )
    assert r.status_code == 201 and r.json()["direction"] == "internal"
    bad = app_desk.api(
        "POST", f"/handoffs/{handoff_id}/resolve", "agent", json={"resolution_code": "vanished"}
    )
    assert bad.status_code == 422
    r = app_desk.api(
        "POST", f"/handoffs/{handoff_id}/resolve", "agent", json={"resolution_code": "fixed"}
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    events = [e["transition"] for e in r.json()["events"]]
    assert events == ["escalate", "claim", "resolve"]
    app_desk.fake.wait_for(lambda f: any("rate this" in t for t in f.texts(PLAIN_CHAT)))
    csat = [c for c in app_desk.fake.sent() if "rate this" in c.params["text"]][-1]
    buttons = [row[0]["callback_data"] for row in csat.params["reply_markup"]["inline_keyboard"]]
    assert buttons == [f"csat:{n}:{handoff_id}" for n in range(1, 6)]
    # the note never went to the customer
    assert not any("old SSO" in t for t in app_desk.fake.texts(PLAIN_CHAT))


def test_take_next_gives_the_most_urgent_first(app_desk: Desk) -> None:
    plain = _escalate(app_desk, PLAIN_CHAT)
    vip = _escalate(app_desk, VIP_CHAT)
    first = app_desk.api("POST", "/handoffs/take-next", "agent").json()
    second = app_desk.api("POST", "/handoffs/take-next", "agent2").json()
    assert (first["id"], second["id"]) == (vip, plain)
    assert app_desk.api("POST", "/handoffs/take-next", "agent").json() is None


def test_api_authentication_and_csm_scoping(app_desk: Desk) -> None:
    vip = _escalate(app_desk, VIP_CHAT)
    plain = _escalate(app_desk, PLAIN_CHAT)
    assert app_desk.api("GET", "/handoffs", None).status_code == 401
    bad = app_desk.client.get("/api/v1/handoffs", headers={"Authorization": "Bearer tb_nope"})
    assert bad.status_code == 401
    mine = {h["id"] for h in app_desk.api("GET", "/handoffs", "csm").json()}
    assert mine == {vip}
    # guessing another account's handoff id looks exactly like a missing one
    assert app_desk.api("GET", f"/handoffs/{plain}", "csm").status_code == 404
    assert app_desk.api("POST", f"/handoffs/{plain}/claim", "csm").status_code == 404
    assert app_desk.api("GET", "/accounts/SMB-1", "csm").status_code == 404
    assert app_desk.api("GET", "/accounts/VIP-1", "csm").status_code == 200
    # only admins change accounts
    body = {"name": "Evil Corp"}
    assert app_desk.api("PUT", "/accounts/SMB-1", "agent", json=body).status_code == 403


def test_account_upsert_is_idempotent(app_desk: Desk) -> None:
    body = {
        "name": "Initech",
        "plan": "Business",
        "tier": "mid-market",
        "arr": 42000,
        "renewal_date": "2027-03-01",
        "csm_email": "csm@t.test",
        "attributes": {"region": "EMEA"},
    }
    first = app_desk.api("PUT", "/accounts/INI-9", "admin", json=body)
    second = app_desk.api("PUT", "/accounts/INI-9", "admin", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert _count(app_desk.engine, Account, Account.external_id == "INI-9") == 1
    unknown_csm = app_desk.api(
        "PUT", "/accounts/INI-9", "admin", json={**body, "csm_email": "nobody@t.test"}
    )
    assert unknown_csm.status_code == 422
    contact = app_desk.api(
        "PUT",
        "/contacts",
        "admin",
        json={"email": "Milton@Initech.test", "name": "Milton", "account_external_id": "INI-9"},
    )
    assert contact.status_code == 200 and contact.json()["email"] == "milton@initech.test"


def test_agent_links_a_chat_user_to_a_contact_by_email(app_desk: Desk) -> None:
    app_desk.post(tg_text_update(9999, "I want to talk to a person"))
    with Session(app_desk.engine) as s:
        handoff = s.exec(select(Handoff)).one()
    assert handoff.account_id is None
    r = app_desk.api(
        "POST", f"/handoffs/{handoff.id}/link-contact", "agent", json={"email": "vera@globex.test"}
    )
    assert r.status_code == 200 and r.json()["account"]["external_id"] == "VIP-1"
