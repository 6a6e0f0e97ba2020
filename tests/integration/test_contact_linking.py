"""Issue 14 item 7: tie a chat to a known contact from the console ("link to contact"), and
issue Telegram link tokens (API and CLI) that `/start <token>` redeems (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.cli import main
from handoff import users
from handoff.models import ChannelIdentity, Contact, Conversation, Handoff
from tests.conftest import WEBHOOK_SECRET
from tests.factories import tg_text_update
from tests.integration.test_console import Console, console  # noqa: F401 - the fixture

VISITOR = "/chat/api/messages"


def web_chat_handoff(c: Console) -> int:
    """A web chat visitor nobody knows asks for a person; the id of their handoff."""
    visitor = TestClient(c.client.app)
    r = visitor.post(
        VISITOR, json={"client_id": "client-0001", "text": "I want to talk to a person"}
    )
    assert r.status_code in (200, 201, 202), r.text
    with Session(c.engine) as s:
        handoff = s.exec(
            select(Handoff)
            .join(Conversation, Conversation.id == Handoff.conversation_id)  # type: ignore[arg-type]
            .where(Conversation.channel == "webchat")
        ).one()
        return handoff.id or 0


def contact_id(c: Console, name: str) -> int:
    with Session(c.engine) as s:
        return s.exec(select(Contact.id).where(Contact.name == name)).one() or 0


def linked_contact(c: Console, handoff_id: int) -> tuple[int, int, int | None]:
    """(conversation's contact, identity's contact, handoff's account) of a handoff."""
    with Session(c.engine) as s:
        h = s.get(Handoff, handoff_id)
        assert h is not None
        conversation = s.get(Conversation, h.conversation_id)
        assert conversation is not None
        identity = s.get(ChannelIdentity, conversation.identity_id)
        assert identity is not None
        return conversation.contact_id, identity.contact_id, h.account_id


def test_agent_links_a_web_chat_visitor_to_a_contact_and_the_context_card_fills(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = web_chat_handoff(console)
    console.login("agent")
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    assert "No account is linked" in page
    found = console.client.get(f"/console/handoffs/{handoff_id}", params={"find": "vera"}).text
    vera = contact_id(console, "Vera VIP")
    assert f'name="contact_id" value="{vera}"' in found
    r = console.act(handoff_id, "link-contact", contact_id=str(vera))
    assert r.status_code == 303
    conversation_contact, identity_contact, account_id = linked_contact(console, handoff_id)
    assert conversation_contact == identity_contact == vera and account_id is not None
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    assert "Globex" in page and "No account is linked" not in page


def test_csm_search_finds_only_contacts_of_their_own_accounts(console: Console) -> None:  # noqa: F811
    handoff_id = console.escalate(6001)  # Vera's (Globex, Cora's account)
    console.login("csm")
    page = console.client.get(f"/console/handoffs/{handoff_id}", params={"find": "pat"}).text
    assert f'value="{contact_id(console, "Pat Plain")}"' not in page
    assert "No contact you may link to matches" in page


def test_csm_linking_to_another_accounts_contact_is_refused_and_writes_nothing(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = console.escalate(6001)
    before = linked_contact(console, handoff_id)
    console.login("csm")
    r = console.act(handoff_id, "link-contact", contact_id=str(contact_id(console, "Pat Plain")))
    assert r.status_code == 303
    assert linked_contact(console, handoff_id) == before


def api_token(c: Console, who: str) -> dict[str, str]:
    with Session(c.engine) as s:
        user = users.by_email(s, f"{who}@t.test")
        token = users.issue_api_token(s, user)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_link_token_ties_a_telegram_chat_to_the_contact_on_start(console: Console) -> None:  # noqa: F811
    vera = contact_id(console, "Vera VIP")
    r = console.client.post(
        f"/api/v1/contacts/{vera}/link-token", headers=api_token(console, "agent")
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    console.client.post(
        "/webhooks/telegram",
        json=tg_text_update(7007, f"/start {token}"),
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
    )
    with Session(console.engine) as s:
        identity = s.exec(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "7007")
        ).one()
        assert identity.contact_id == vera


def test_csm_cannot_issue_a_link_token_for_another_accounts_contact(console: Console) -> None:  # noqa: F811
    pat = contact_id(console, "Pat Plain")
    with Session(console.engine) as s:
        before = s.exec(select(Contact.link_token).where(Contact.id == pat)).one()
    r = console.client.post(f"/api/v1/contacts/{pat}/link-token", headers=api_token(console, "csm"))
    assert r.status_code == 404
    with Session(console.engine) as s:
        assert s.exec(select(Contact.link_token).where(Contact.id == pat)).one() == before


def test_cli_prints_a_telegram_deep_link_for_a_contact(
    console: Console,  # noqa: F811
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Session(console.engine) as s:
        vera = s.exec(select(Contact).where(Contact.name == "Vera VIP")).one()
        vera.email = "vera@globex.test"
        s.add(vera)
        s.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "acme_support_bot")
    monkeypatch.chdir(tmp_path)
    assert main(["contacts", "link-token", "--email", "VERA@globex.test"]) == 0
    link = capsys.readouterr().out.strip()
    match = re.fullmatch(r"https://t\.me/acme_support_bot\?start=([A-Za-z0-9_-]{20,64})", link)
    assert match
    with Session(console.engine) as s:
        assert s.exec(
            select(Contact.link_token).where(Contact.email == "vera@globex.test")
        ).one() == match.group(1)
