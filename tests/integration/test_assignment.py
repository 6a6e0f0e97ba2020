"""Issue 16 item 2: automatic assignment (owner first, then fewest open under capacity), the
Online/Away availability, returning handoffs of people who went away, and its races."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from handoff import assignment, availability, queue
from handoff.db import build_engine
from handoff.escalation import AssignmentPolicy
from handoff.models import (
    Account,
    ChannelIdentity,
    Contact,
    Conversation,
    Handoff,
    HandoffEvent,
    User,
    utcnow,
)
from tests.factories import tg_text_update
from tests.integration.desk_support import PLAIN_CHAT, VIP_CHAT, Desk

POLICY = AssignmentPolicy()


def _escalate(d: Desk, chat: int = VIP_CHAT, text: str = "I want to talk to a person") -> int:
    assert d.post(tg_text_update(chat, text)).json()["action"] == "escalated"
    with Session(d.engine) as s:
        return max(s.exec(select(Handoff.id)).all())  # type: ignore[type-var]


def _online(d: Desk, who: str, **body: Any) -> Any:
    r = d.api("PUT", "/me/availability", who, json={"status": "online", **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_nobody_online_leaves_a_new_handoff_waiting(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    h = app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()
    assert h["status"] == "waiting" and h["assignee_id"] is None
    assert h["assignment_reason"] is None


def test_a_new_handoff_goes_to_the_online_support_owner_and_says_why(app_desk: Desk) -> None:
    owner = app_desk.ids["agent2"]
    r = app_desk.api("PUT", "/accounts/VIP-1/support-owner", "admin", json={"user_id": owner})
    assert r.status_code == 200 and r.json()["support_owner_id"] == owner
    _online(app_desk, "agent")
    assert _online(app_desk, "agent2")["status"] == "online"
    handoff_id = _escalate(app_desk)
    h = app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()
    assert h["status"] == "assigned" and h["assignee_id"] == owner
    assert h["assignment_reason"] == "owner of Globex"
    assert h["events"][-1]["transition"] == "assign"
    assert h["events"][-1]["reason"] == "owner of Globex"
    listed = app_desk.api("GET", "/handoffs", "agent").json()
    assert listed[0]["assignment_reason"] == "owner of Globex"


def test_without_an_online_owner_the_agent_with_fewest_open_gets_it(app_desk: Desk) -> None:
    _online(app_desk, "agent")
    first = _escalate(app_desk, PLAIN_CHAT)
    h = app_desk.api("GET", f"/handoffs/{first}", "agent").json()
    assert h["assignee_id"] == app_desk.ids["agent"]
    assert h["assignment_reason"] == "fewest open (0 of 5)"
    _online(app_desk, "agent2")
    second = _escalate(app_desk, VIP_CHAT)
    h = app_desk.api("GET", f"/handoffs/{second}", "agent").json()
    assert h["assignee_id"] == app_desk.ids["agent2"]
    assert h["assignment_reason"] == "fewest open (0 of 5)"


def test_going_online_pulls_waiting_handoffs_up_to_capacity(app_desk: Desk) -> None:
    first = _escalate(app_desk, PLAIN_CHAT)
    second = _escalate(app_desk, VIP_CHAT)
    r = app_desk.api(
        "PUT", f"/users/{app_desk.ids['agent']}/capacity", "admin", json={"capacity": 1}
    )
    assert r.status_code == 200 and r.json()["capacity"] == 1
    _online(app_desk, "agent")
    with Session(app_desk.engine) as s:
        mine = s.exec(select(Handoff).where(Handoff.assignee_id == app_desk.ids["agent"])).all()
        assert len(mine) == 1  # capacity 1: the most urgent one (the VIP's P1/P2)
        assert mine[0].id == second and mine[0].assignment_reason == "fewest open (0 of 1)"
        assert s.get(Handoff, first).status == "waiting"  # type: ignore[union-attr]


def test_manual_claim_still_works_and_records_why(app_desk: Desk) -> None:
    handoff_id = _escalate(app_desk)
    r = app_desk.api("POST", f"/handoffs/{handoff_id}/claim", "agent")
    assert r.status_code == 200 and r.json()["assignment_reason"] == "claimed"


def test_an_away_agents_handoffs_return_to_the_queue_after_the_configured_time(
    app_desk: Desk,
) -> None:
    _online(app_desk, "agent")
    handoff_id = _escalate(app_desk)
    assert app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()["status"] == "assigned"
    r = app_desk.api("PUT", "/me/availability", "agent", json={"status": "away"})
    assert r.json() == {"status": "away", "until": None}
    # not yet: away for less than away_return_minutes
    assert assignment.requeue_away(app_desk.engine, POLICY) == 0
    later = utcnow() + timedelta(minutes=POLICY.away_return_minutes, seconds=5)
    assert assignment.requeue_away(app_desk.engine, POLICY, now=later) == 1
    h = app_desk.api("GET", f"/handoffs/{handoff_id}", "agent").json()
    assert h["status"] == "waiting" and h["assignee_id"] is None
    assert h["assignment_reason"] is None
    assert h["events"][-1]["transition"] == "requeue"
    assert h["events"][-1]["reason"] == "Alan Agent away for 5+ min"


def test_availability_set_in_the_console_ends_with_the_session(app_desk: Desk) -> None:
    from tests.integration.test_console import CSRF_RE

    with Session(app_desk.engine) as s:
        agent = s.get(User, app_desk.ids["agent"])
        assert agent is not None
        from handoff import users

        agent.password_hash = users.hash_password("correct-horse-battery")
        s.add(agent)
        s.commit()
    client = app_desk.client
    token = CSRF_RE.search(client.get("/console/login").text)
    assert token
    client.post(
        "/console/login",
        data={"email": "agent@t.test", "password": "correct-horse-battery", "csrf_token": token[1]},
    )
    page = client.get("/console").text
    assert "○ Away" in page
    csrf = CSRF_RE.search(page)
    assert csrf
    r = client.post(
        "/console/availability",
        data={"csrf_token": csrf[1], "status": "online", "next": "/console"},
    )
    assert "● Online" in r.text
    with Session(app_desk.engine) as s:
        assert app_desk.ids["agent"] in availability.online_users(s)
    client.post("/console/logout", data={"csrf_token": csrf[1]})
    with Session(app_desk.engine) as s:
        assert app_desk.ids["agent"] not in availability.online_users(s)
        assert app_desk.ids["agent"] in availability.away_since(s)


def test_bad_capacity_or_owner_is_refused_naming_the_field_and_nothing_is_saved(
    app_desk: Desk,
) -> None:
    agent = app_desk.ids["agent"]
    for bad in (0, -3):
        r = app_desk.api("PUT", f"/users/{agent}/capacity", "admin", json={"capacity": bad})
        assert r.status_code == 422 and "capacity" in r.text
    r = app_desk.api("PUT", "/accounts/VIP-1/support-owner", "admin", json={"user_id": 99999})
    assert r.status_code == 422 and "support_owner_id" in r.json()["detail"]
    r = app_desk.api(
        "PUT", "/accounts/VIP-1/support-owner", "admin", json={"user_id": app_desk.ids["csm2"]}
    )
    assert r.status_code == 422 and "support_owner_id" in r.json()["detail"]
    r = app_desk.api("PUT", "/me/availability", "agent", json={"status": "busy"})
    assert r.status_code == 422 and "status" in r.text
    with Session(app_desk.engine) as s:
        assert s.get(User, agent).capacity == 5  # type: ignore[union-attr]
        vip = s.exec(select(Account).where(Account.external_id == "VIP-1")).one()
        assert vip.support_owner_id is None
        assert availability.online_users(s) == {}


def test_only_admins_change_capacity_and_support_owners(app_desk: Desk) -> None:
    agent = app_desk.ids["agent"]
    r = app_desk.api("PUT", f"/users/{agent}/capacity", "agent", json={"capacity": 9})
    assert r.status_code == 403
    r = app_desk.api("PUT", "/accounts/VIP-1/support-owner", "agent", json={"user_id": agent})
    assert r.status_code == 403


# ------------------------------------------------------------------------------ races
def _seed_race(engine: Any, agents: int, capacity: int, handoffs: int) -> list[int]:
    """``agents`` online agents of ``capacity`` and ``handoffs`` waiting handoffs."""
    with Session(engine) as s:
        people = [
            User(email=f"pool{i}@t.test", name=f"Pool {i}", role="agent", capacity=capacity)
            for i in range(agents)
        ]
        s.add_all(people)
        s.flush()
        for person in people:
            availability.set_availability(s, person.id or 0, "online", minutes=60)
        for i in range(handoffs):
            _waiting_handoff(s, i)
        s.commit()
        return [p.id or 0 for p in people]


def _waiting_handoff(s: Session, i: int) -> Handoff:
    contact = Contact(name=f"Racer {i}")
    s.add(contact)
    s.flush()
    identity = ChannelIdentity(contact_id=contact.id or 0, channel="telegram", external_id=f"r{i}")
    s.add(identity)
    s.flush()
    conversation = Conversation(
        contact_id=contact.id or 0, identity_id=identity.id or 0, channel="telegram"
    )
    s.add(conversation)
    s.flush()
    return queue.create_handoff(
        s,
        conversation,
        priority=3,
        reasons=["requested_human"],
        intent=None,
        context={},
        account_id=None,
        sla_minutes=240,
    )


def _check_no_double_assignment_and_capacity(engine: Any, ids: list[int], capacity: int) -> int:
    with Session(engine) as s:
        per_handoff = s.exec(
            select(HandoffEvent.handoff_id, func.count())
            .where(HandoffEvent.transition == "assign")
            .group_by(col(HandoffEvent.handoff_id))
        ).all()
        assert all(n == 1 for _h, n in per_handoff), per_handoff
        loads = s.exec(
            select(Handoff.assignee_id, func.count())
            .where(Handoff.status == "assigned")
            .group_by(col(Handoff.assignee_id))
        ).all()
        assert all(n <= capacity for _a, n in loads), loads
        assert {a for a, _n in loads} <= set(ids)
        return len(per_handoff)


def _run_threads(target: Any, n: int = 20) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_twenty_concurrent_sweeps_assign_each_handoff_once_within_capacity(
    database_url: str,
) -> None:
    engine = build_engine(database_url, pool_size=25)
    try:
        ids = _seed_race(engine, agents=4, capacity=3, handoffs=30)
        errors = _run_threads(lambda _i: assignment.assign_waiting(engine, POLICY))
        assert errors == []
        assert _check_no_double_assignment_and_capacity(engine, ids, 3) == 12  # 4 agents x 3
    finally:
        engine.dispose()


def test_twenty_handoffs_opened_at_once_are_assigned_within_capacity(database_url: str) -> None:
    engine = build_engine(database_url, pool_size=25)
    try:
        ids = _seed_race(engine, agents=3, capacity=4, handoffs=0)

        def open_one(i: int) -> None:
            from handoff.db import write_lock

            with write_lock(engine), Session(engine) as s:  # as the triage pipeline does
                handoff = _waiting_handoff(s, 1000 + i)
                assignment.assign_new(s, handoff, POLICY)
                s.commit()

        errors = _run_threads(open_one)
        assert errors == []
        assert _check_no_double_assignment_and_capacity(engine, ids, 4) == 12  # 3 agents x 4
        with Session(engine) as s:
            waiting = s.exec(select(func.count()).where(Handoff.status == "waiting")).one()
            assert waiting == 8
    finally:
        engine.dispose()
