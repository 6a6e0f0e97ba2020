"""Issue 14 items 7, 9 and 10 in Chromium: link a web chat visitor to a contact from the
conversation page, taps read as what the customer did, and resolving an unanswered customer
asks first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from handoff.models import Conversation, Handoff
from tests.browser.test_console_browser import (  # noqa: F401 - fixtures
    VIP_CHAT,
    Site,
    _login,
    _shot,
    browser,
    site,
)

pytestmark = pytest.mark.browser


def web_chat_handoff(running: Site) -> int:
    with httpx.Client(base_url=running.url, timeout=30) as visitor:
        r = visitor.post(
            "/chat/api/messages",
            json={"client_id": "browser-visitor-1", "text": "I want to talk to a person"},
        )
        r.raise_for_status()
    with Session(running.engine) as s:
        return (
            s.exec(
                select(Handoff.id)
                .join(Conversation, Conversation.id == Handoff.conversation_id)  # type: ignore[arg-type]
                .where(Conversation.channel == "webchat")
            ).one()
            or 0
        )


def test_agent_links_a_web_chat_visitor_to_a_contact_and_the_card_fills(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    handoff_id = web_chat_handoff(site)
    context, page, dialogs = _login(browser, site, "agent")
    page.goto(f"{site.url}/console/handoffs/{handoff_id}")
    expect(page.locator(".cs")).to_contain_text("No account is linked")
    page.fill("#find-contact", "vera")
    page.locator("#link-contact button[type=submit]").click()
    expect(page.locator("#contact-matches")).to_contain_text("Vera VIP")
    expect(page.locator("#contact-matches")).to_contain_text("Globex")
    _shot(page, "console-link-contact.png")
    page.locator("#contact-matches li", has_text="Vera VIP").locator("button").click()
    expect(page.locator(".flash")).to_have_text("Linked to Vera VIP.")
    expect(page.locator(".cs__name")).to_have_text("Globex")
    expect(page.locator(".cs")).to_contain_text("250,000")
    assert dialogs == []
    context.close()


def test_resolving_an_unanswered_customer_asks_first_and_the_deep_link_reads_as_words(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    text = "we are thinking about not renewing our contract"
    site.customer(VIP_CHAT, text, "Vera")
    handoff = site.handoff_of(text)
    context, page, dialogs = _login(browser, site, "agent")
    page.goto(f"{site.url}/console/handoffs/{handoff.id}")
    expect(page.locator("#transcript")).to_contain_text("linked their chat")
    expect(page.locator("#transcript")).not_to_contain_text("vip-token-123")
    page.click("#claim")
    page.locator("button", has_text="Resolve").first.click()
    expect(page.locator("#confirm-resolve")).to_contain_text("no reply yet")
    expect(page.locator("#confirm-resolve")).to_contain_text(text)
    expect(page.locator("#handoff-status")).to_contain_text("assigned")
    _shot(page, "console-resolve-confirm.png")
    page.click("#confirm-resolve-yes")
    expect(page.locator(".flash")).to_have_text("Resolved.")
    expect(page.locator("#handoff-status")).to_contain_text("resolved")
    assert dialogs == []
    context.close()
