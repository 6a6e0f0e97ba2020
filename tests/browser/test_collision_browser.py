"""Issue 16 item 4 in Chromium: two agents in two browser contexts on one conversation. The
first sees the second viewing and typing; the second's reply to the first's conversation
asks for confirmation before it is sent."""

from __future__ import annotations

from typing import Any

from tests.browser.test_console_browser import (  # noqa: F401 - fixtures
    Site,
    _login,
    browser,
    site,
)
from tests.integration.test_console import VIP_CHAT


def test_agents_see_each_other_and_a_reply_to_anothers_conversation_is_confirmed(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    site.customer(VIP_CHAT, "we are thinking about not renewing our contract", "Vera")
    vip = site.handoff_of("we are thinking about not renewing our contract")
    context, page, dialogs = _login(browser, site, "agent")
    context2, page2, dialogs2 = _login(browser, site, "agent2")
    page.goto(f"{site.url}/console/handoffs/{vip.id}")
    page.click("#claim")
    expect(page.locator(".flash")).to_have_text("You took this conversation.")
    expect(page.locator("#assignment-reason")).to_have_text("claimed")

    page2.goto(f"{site.url}/console/handoffs/{vip.id}")
    expect(page2.locator("#presence")).to_contain_text("Alan Agent is viewing", timeout=10_000)
    expect(page.locator("#presence")).to_contain_text("Grace Agent is viewing", timeout=10_000)
    page2.fill("#reply-text", "Hi Vera, Grace here")
    page2.type("#reply-text", "!")  # a keystroke: the first agent sees the second typing
    expect(page.locator("#presence")).to_contain_text("Grace Agent is typing…", timeout=10_000)

    page2.click("text=Send reply")
    expect(page2.locator("#confirm-reply")).to_contain_text("Alan Agent owns this conversation")
    expect(page2.locator("#confirm-reply-text")).to_have_value("Hi Vera, Grace here!")
    assert "Hi Vera, Grace here!" not in " ".join(site.fake.texts(VIP_CHAT))
    page2.click("#confirm-reply-yes")
    expect(page2.locator(".flash")).to_have_text("Reply sent.")
    site.fake.wait_for(lambda f: "Hi Vera, Grace here!" in f.texts(VIP_CHAT))
    expect(page2.locator("#handoff-status")).to_contain_text("Alan Agent")
    assert dialogs == [] and dialogs2 == []
    context.close()
    context2.close()
