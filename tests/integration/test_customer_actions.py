"""Issue 14 item 9: a button tap or a deep link reads as what the customer did, in the
transcript and in "recent contacts" — never as raw callback data or a link token."""

from __future__ import annotations

from tests.conftest import WEBHOOK_SECRET
from tests.factories import tg_callback_update
from tests.integration.test_console import VIP_CHAT, Console, console  # noqa: F401


def test_a_csat_tap_and_a_start_token_read_as_what_the_customer_did(
    console: Console,  # noqa: F811
) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    console.act(handoff_id, "resolve", resolution_code="answered", ask_csat="1", confirm="1")
    console.fake.wait_for(lambda f: any("How did we do?" in t for t in f.texts(VIP_CHAT)))
    console.client.post(
        "/webhooks/telegram",
        json=tg_callback_update(VIP_CHAT, f"csat:5:{handoff_id}"),
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
    )
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    assert page.count("rated 5/5") == 2  # the transcript line and "recent contacts"
    assert page.count("linked their chat") == 2
    assert "csat:5:" not in page and "vip-token-123" not in page
