"""Issue 6 in a real browser: the console driven by Playwright in Debian's Chromium against the
real app (uvicorn on loopback, lifespan on, SQLite) with the fake Telegram Bot API.

Screenshots of the queue, a conversation and the CSM accounts page go to
``test-artifacts/screenshots/`` and are copied to ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from bot.app import create_app
from bot.settings import ROOT
from handoff.models import Account, Contact, Handoff, HealthSnapshot, Message
from tests.conftest import WEBHOOK_SECRET, make_settings
from tests.factories import tg_text_update
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import PASSWORD, PLAIN_CHAT, VIP_CHAT, seed

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RISK_CHAT = 6003
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)> javascript:alert(1)"


class AppServer:
    """The real app under uvicorn on a free loopback port, with its lifespan (model, worker)."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class Site:
    def __init__(self, server: AppServer, fake: FakeBotApi, engine: Any) -> None:
        self.url = server.url
        self.fake = fake
        self.engine = engine

    def customer(self, chat: int, text: str, name: str = "Alex") -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/webhooks/telegram",
            json=tg_text_update(chat, text, first_name=name),
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def handoff_of(self, text: str) -> Handoff:
        with Session(self.engine) as s:
            message = s.exec(select(Message).where(Message.text == text)).one()
            handoff = s.exec(
                select(Handoff).where(Handoff.conversation_id == message.conversation_id)
            ).one()
            return handoff


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium to run browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(
    tmp_path: Path, sqlite_template: Path, model_path: Path, fake_bot_api: FakeBotApi
) -> Iterator[Site]:
    db = tmp_path / "console.db"
    shutil.copy(sqlite_template, db)
    settings = make_settings(
        f"sqlite:///{db}", model_path, telegram_api_base_url=fake_bot_api.base_url
    )
    app = create_app(settings)
    engine = app.state.services.engine
    seed(engine)
    with Session(engine) as s:  # a third, at-risk account for a fuller queue
        risk = Account(
            external_id="RISK-1",
            name="Initech",
            plan="Business",
            tier="mid-market",
            arr=18_000,
            renewal_date=date.today() + timedelta(days=200),
            csm_id=s.exec(select(Account.csm_id).where(Account.external_id == "VIP-1")).one(),
            health_score=31,
            health_status="red",
            attributes={"health_factors": ["active users -45% in 30 days", "2 P1 tickets"]},
        )
        s.add(risk)
        s.flush()
        s.add(Contact(account_id=risk.id, name="Peter Gibbons", link_token="risk-token-123"))
        globex = s.exec(select(Account).where(Account.external_id == "VIP-1")).one()
        history = {risk.id: (88, 84, 70, 52, 31), globex.id: (85, 84, 80, 76, 72)}
        for account_id, scores in history.items():  # a month of weekly health, for the trend
            for back, score in zip((28, 21, 14, 7, 0), scores, strict=True):
                day = date.today() - timedelta(days=back)
                at = datetime.combine(day, clock(8), tzinfo=UTC)
                snapshot = HealthSnapshot(account_id=account_id, score=score, status="-")
                snapshot.computed_at = at
                s.add(snapshot)
        s.commit()
    with AppServer(app) as server:
        site = Site(server, fake_bot_api, engine)
        site.customer(VIP_CHAT, "/start vip-token-123", "Vera")
        site.customer(PLAIN_CHAT, "/start plain-token-123", "Pat")
        site.customer(RISK_CHAT, "/start risk-token-123", "Peter")
        fake_bot_api.wait_for(
            lambda f: f.texts(VIP_CHAT) and f.texts(PLAIN_CHAT) and f.texts(RISK_CHAT)
        )
        yield site


def _page(context: Any) -> tuple[Any, list[str]]:
    """A page that records (and dismisses) every JavaScript dialog: there must be none."""
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page, dialogs


def _login(browser: Any, site: Site, who: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=VIEWPORT)
    page, dialogs = _page(context)
    page.goto(f"{site.url}/console/login")
    page.fill("input[name=email]", f"{who}@t.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/console")
    return context, page, dialogs


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, DOCS / name)


def test_agent_claims_the_vip_handoff_and_replies_while_a_second_agent_sees_it_taken(
    browser: Any, site: Site
) -> None:
    from playwright.sync_api import expect

    vip_text = "we are thinking about not renewing our contract"
    site.customer(VIP_CHAT, vip_text, "Vera")
    vip = site.handoff_of(vip_text)
    site.customer(PLAIN_CHAT, "I want to talk to a person about my invoice", "Pat")
    site.customer(RISK_CHAT, "this is the third time the export fails, we are furious", "Peter")

    context, page, dialogs = _login(browser, site, "agent")
    first = page.locator("#queue-rows tr").first
    expect(first).to_contain_text("Globex")
    expect(first.locator(".prio")).to_have_text("P1")
    expect(first.locator(".badge--vip_account")).to_have_text("VIP")
    expect(page.locator("#queue-rows tr")).to_have_count(3)
    # the second agent has the queue open before the first one claims
    context2, page2, dialogs2 = _login(browser, site, "agent2")
    _shot(page, "console-queue.png")

    first.locator("a.who").click()
    page.wait_for_url(f"{site.url}/console/handoffs/{vip.id}")
    qbr = (date.today() + timedelta(days=6)).isoformat()
    expect(page.locator("#qbr")).to_contain_text(qbr)
    expect(page.locator("#qbr")).to_contain_text("in 6 days")
    expect(page.locator(".cs")).to_contain_text("250,000")
    page.click("#claim")
    expect(page.locator(".flash")).to_have_text("You took this conversation.")
    page.fill("#reply-text", "Hi Vera, I'm looking at your renewal right now.")
    page.click("text=Send reply")
    expect(page.locator(".flash")).to_have_text("Reply sent.")
    site.fake.wait_for(
        lambda f: "Hi Vera, I'm looking at your renewal right now." in f.texts(VIP_CHAT)
    )
    # a new customer message shows up without a reload
    site.customer(VIP_CHAT, "thanks, we also need a quote for 40 more seats", "Vera")
    expect(page.locator("#transcript")).to_contain_text("40 more seats", timeout=10_000)
    _shot(page, "console-conversation.png")

    # the second agent's open queue shows the new owner by itself, and the page says taken
    row2 = page2.locator(f"#queue-rows tr[data-id='{vip.id}']")
    expect(row2).to_contain_text("Alan Agent", timeout=10_000)
    page2.goto(f"{site.url}/console/handoffs/{vip.id}")
    expect(page2.locator(".composer")).to_contain_text("Taken by Alan Agent")
    expect(page2.locator("#claim")).to_have_count(0)
    assert dialogs == [] and dialogs2 == []
    context.close()
    context2.close()


def test_csm_sees_only_their_accounts_and_escalations(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    site.customer(PLAIN_CHAT, "I want to talk to a person", "Pat")
    site.customer(VIP_CHAT, "we are thinking about not renewing our contract", "Vera")
    site.customer(RISK_CHAT, "the export is broken again, this is unacceptable", "Peter")
    context, page, dialogs = _login(browser, site, "csm")
    rows = page.locator("#queue-rows tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#queue-rows")).not_to_contain_text("Hooli")
    page.click("nav >> text=Accounts")
    page.wait_for_url(f"{site.url}/console/accounts")
    table = page.locator("#accounts-table")
    expect(table).to_contain_text("Globex")
    expect(table).to_contain_text("Initech")
    expect(table).not_to_contain_text("Hooli")
    expect(page.locator("#esc-title")).to_be_visible()
    expect(table).to_contain_text("-57 in 28 days")
    _shot(page, "console-accounts.png")
    assert dialogs == []
    context.close()


def test_customer_markup_is_shown_as_inert_text(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    text = f"talk to a human {XSS}"
    site.customer(PLAIN_CHAT, text, "Pat")
    handoff = site.handoff_of(text)
    context, page, dialogs = _login(browser, site, "agent")
    expect(page.locator("#queue-rows")).to_contain_text("<script>alert(1)</script>")
    page.wait_for_timeout(3500)  # one live refresh: rows rebuilt by the script stay inert
    expect(page.locator("#queue-rows")).to_contain_text("<img src=x onerror=alert(1)>")
    page.goto(f"{site.url}/console/handoffs/{handoff.id}")
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text(text)
    # a second one arrives while the page is open (appended by the script)
    site.customer(PLAIN_CHAT, f"again {XSS}", "Pat")
    expect(transcript).to_contain_text(f"again {XSS}", timeout=10_000)
    for p in (page,):
        assert p.locator("img[src=x]").count() == 0
        assert p.locator("[onerror]").count() == 0
        assert p.locator("a[href^='javascript']").count() == 0
        assert p.locator("script:not([src])").count() == 0
    page.goto(f"{site.url}/console")
    page.wait_for_timeout(3500)
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("script:not([src])").count() == 0
    assert dialogs == []
    context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    site.customer(VIP_CHAT, "I want to talk to a person", "Vera")
    handoff = site.handoff_of("I want to talk to a person")
    context, page, _dialogs = _login(browser, site, "agent")
    page.goto(f"{site.url}/console/handoffs/{handoff.id}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    with page.expect_navigation() as nav:
        page.click("#claim")
    assert nav.value.status == 403
    expect(page.locator("body")).to_contain_text("CSRF")
    with Session(site.engine) as s:
        fresh = s.get(Handoff, handoff.id)
        assert fresh is not None and fresh.status == "waiting" and fresh.assignee_id is None
    # the same post from a script in the page (same cookies, no token) is refused too
    response = page.request.post(f"{site.url}/console/handoffs/{handoff.id}/claim", form={})
    assert response.status == 403
    context.close()


def test_admin_sees_the_dashboard_charts_for_a_date_range(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    site.customer(PLAIN_CHAT, "how do I reset my password", "Pat")
    site.customer(VIP_CHAT, "we are thinking about not renewing our contract", "Vera")
    site.customer(RISK_CHAT, "the export is broken again, this is unacceptable", "Peter")
    context, page, dialogs = _login(browser, site, "admin")
    page.click("nav >> text=Dashboard")
    page.wait_for_url(f"{site.url}/console/dashboard**")
    # three conversations, two of them escalated: the figures come from what just happened
    expect(page.locator("#kpi-escalations")).to_have_text("2")
    expect(page.locator("#reasons-table tr[data-reason='vip_account'] td.num")).to_have_text("1")
    # the charts are inline SVG drawn by the server, nothing fetched from elsewhere
    assert page.locator("svg").count() >= 3
    _shot(page, "console-dashboard.png")
    assert dialogs == []
    context.close()
