"""Issue 8: per-contact erasure removes the person everywhere and keeps aggregate counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, SQLModel, func, select

from handoff import privacy
from handoff.models import (
    ChannelIdentity,
    Contact,
    Handoff,
    Message,
    NpsResponse,
    OutboxEntry,
    utcnow,
)
from tests.factories import next_update_id, tg_text_update
from tests.integration.desk_support import CSM_CHAT, VIP_CHAT, Desk

MARKER = "zebra-marker-481"
COLLEAGUE_CHAT = 5003


def _dump_everything(engine: Any) -> str:
    """Every row of every table as text: what an attacker with the database would see."""
    parts: list[str] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


def _count(engine: Any, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_erasure_leaves_nothing_of_the_person(app_desk: Desk) -> None:
    with Session(app_desk.engine) as s:
        vera = s.exec(select(Contact).where(Contact.email == "vera@globex.test")).one()
        colleague = Contact(
            account_id=vera.account_id, name="Carl Colleague", link_token="colleague-tok"
        )
        s.add(colleague)
        s.commit()
        vera_id = vera.id
    # Vera writes, escalates (CSM alert quotes her words), sends an unsupported update
    app_desk.post(tg_text_update(VIP_CHAT, f"my invoice number {MARKER} is wrong, cancel it"))
    app_desk.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    app_desk.post(
        {
            "update_id": next_update_id(),
            "my_chat_member": {
                "chat": {"id": VIP_CHAT, "type": "private", "first_name": MARKER},
                "from": {"id": VIP_CHAT, "is_bot": False, "first_name": MARKER},
                "date": 1700000000,
                "old_chat_member": {
                    "status": "member",
                    "user": {"id": 42, "is_bot": True, "first_name": "bot"},
                },
                "new_chat_member": {
                    "status": "kicked",
                    "until_date": 0,
                    "user": {"id": 42, "is_bot": True, "first_name": "bot"},
                },
            },
        }
    )
    # a colleague at the same account escalates: their snapshot quotes Vera's recent words
    app_desk.post(tg_text_update(COLLEAGUE_CHAT, "/start colleague-tok"))
    app_desk.post(tg_text_update(COLLEAGUE_CHAT, "we want to cancel our subscription"))
    app_desk.fake.wait_for(lambda f: len(f.texts(CSM_CHAT)) >= 1)
    before = _dump_everything(app_desk.engine)
    assert MARKER in before and "vera@globex.test" in before
    counts = {m: _count(app_desk.engine, m) for m in (Message, Handoff, OutboxEntry)}

    r = app_desk.api("DELETE", f"/contacts/{vera_id}", "agent")
    assert r.status_code == 403
    r = app_desk.api("DELETE", f"/contacts/{vera_id}", "admin")
    assert r.status_code == 200, r.text
    assert r.json()["messages"] >= 3 and r.json()["snapshots_elsewhere"] >= 1

    after = _dump_everything(app_desk.engine)
    for trace in (MARKER, "vera@globex.test", "Vera VIP", "vip-token-123", "invoice number"):
        assert trace not in after, trace
    with Session(app_desk.engine) as s:
        ids = [i.external_id for i in s.exec(select(ChannelIdentity)).all()]
    assert str(VIP_CHAT) not in ids
    # aggregate counts are kept
    assert {m: _count(app_desk.engine, m) for m in (Message, Handoff, OutboxEntry)} == counts
    # the colleague is untouched
    assert "we want to cancel our subscription" in after


def test_redelivered_erased_message_is_not_stored_again(app_desk: Desk) -> None:
    update = tg_text_update(VIP_CHAT, f"secret {MARKER}")
    app_desk.post(update)
    with Session(app_desk.engine) as s:
        vera = s.exec(select(Contact).where(Contact.email == "vera@globex.test")).one()
        privacy.erase_contact(s, vera.id or 0)
        s.commit()
    assert app_desk.post(update).json()["duplicate"] is True
    assert MARKER not in _dump_everything(app_desk.engine)


def test_retention_redacts_old_content(app_desk: Desk) -> None:
    app_desk.post(tg_text_update(VIP_CHAT, f"old words {MARKER}"))

    def drained(_f: Any) -> bool:
        with Session(app_desk.engine) as s:
            statuses = s.exec(select(OutboxEntry.status)).all()
        return all(st in ("sent", "dead") for st in statuses)

    app_desk.fake.wait_for(drained)

    with Session(app_desk.engine) as s:
        report = privacy.apply_retention(s, 1, now=utcnow() + timedelta(days=2))
        s.commit()
    assert report.messages >= 1
    assert MARKER not in _dump_everything(app_desk.engine)


def test_erasure_removes_nps_answers_ordering_keys_and_profile_contacts(app_desk: Desk) -> None:
    """Issue 13 item 3: NPS email/id/comment, ``telegram:<chat>`` keys, the profile contact."""
    profile_chat, profile_name = 5077, "Wilhelmina Profilename"
    with Session(app_desk.engine) as s:
        vip = s.exec(select(Contact.account_id).where(Contact.email == "vera@globex.test")).one()
        nora = Contact(account_id=vip, name="Nora", email="nora@globex.test", link_token="nora-t1")
        s.add(nora)
        s.commit()
        nora_id = nora.id
    # a chat writes first (its profile name makes a contact), then is linked to Nora
    app_desk.post(tg_text_update(profile_chat, "hello there", first_name=profile_name))
    app_desk.post(tg_text_update(profile_chat, "/start nora-t1", first_name=profile_name))
    nps = app_desk.api(
        "POST",
        "/accounts/VIP-1/nps",
        "admin",
        json={
            "score": 3,
            "date": utcnow().date().isoformat(),
            "comment": f"slow support {MARKER}",
            "respondent": "nora@globex.test",
        },
    )
    assert nps.status_code == 201, nps.text
    app_desk.fake.wait_for(lambda f: len(f.texts(profile_chat)) >= 2)
    before = _dump_everything(app_desk.engine)
    for trace in (f"telegram:{profile_chat}", profile_name, "nora@globex.test", MARKER):
        assert trace in before, trace
    r = app_desk.api("DELETE", f"/contacts/{nora_id}", "admin")
    assert r.status_code == 200, r.text
    assert r.json()["nps"] == 1 and r.json()["profiles"] == 1
    after = _dump_everything(app_desk.engine)
    for trace in (MARKER, "nora@globex.test", f"telegram:{profile_chat}", "Wilhelmina"):
        assert trace not in after, trace
    with Session(app_desk.engine) as s:  # the score still counts for the account's health
        assert s.exec(select(NpsResponse.score)).all() == [3]
