"""Issue 14 in a real browser: the web chat widget as a customer sees it (Chromium through
Playwright, the real app under uvicorn with its outbox worker, SQLite)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.app import create_app
from handoff import desk, replies
from handoff.access import Principal
from handoff.models import Conversation, Handoff, User
from tests.browser.test_console_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, AppServer
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
LONG_REPLY = "Thanks for your patience. " + " ".join(
    f"Step {n}: open the settings page, pick the workspace and check the export options."
    for n in range(1, 17)
)


class Chat:
    """The app serving the widget, plus what an agent does from the other side."""

    def __init__(self, url: str, engine: Any, worker: Any) -> None:
        self.url = url
        self.engine = engine
        self.worker = worker

    def handoff(self) -> Handoff:
        with Session(self.engine) as session:
            return session.exec(select(Handoff)).one()

    def agent(self) -> Principal:
        with Session(self.engine) as session:
            user = session.exec(select(User).where(User.email == "alice@example.test")).first()
            if user is None:
                user = User(email="alice@example.test", name="Alice Agent", role="agent")
                session.add(user)
                session.commit()
                session.refresh(user)
            return Principal.of(user)

    def claim(self) -> None:
        with Session(self.engine) as session:
            desk.claim(session, self.agent(), self.handoff().id or 0)
            session.commit()

    def resolve_asking_csat(self) -> None:
        with Session(self.engine) as session:
            desk.resolve(session, self.agent(), self.handoff().id or 0, "answered", ask_csat=True)
            session.commit()

    def agent_says(self, text: str) -> None:
        with Session(self.engine) as session:
            conversation = session.exec(select(Conversation)).one()
            replies.queue_reply(
                session, conversation, text, author="agent", author_user_id=self.agent().user_id
            )
            session.commit()
        self.wake()

    def wake(self) -> None:
        """The console wakes the outbox worker after a commit; do the same."""
        self.worker.wake()


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
def chat(
    tmp_path: Path, sqlite_template: Path, model_path: Path, fake_bot_api: FakeBotApi
) -> Iterator[Chat]:
    db = tmp_path / "webchat.db"
    shutil.copy(sqlite_template, db)
    settings = make_settings(
        f"sqlite:///{db}",
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        webchat_secret="browser-webchat-secret-0123456789",
    )
    app = create_app(settings)
    with AppServer(app) as server:
        services = app.state.services
        yield Chat(server.url, services.engine, services.worker)


@pytest.fixture
def page(browser: Any, chat: Chat) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{chat.url}/chat")
    yield page
    context.close()


def send(page: Any, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def test_the_csat_question_reaches_the_widget_and_a_tap_rates(page: Any, chat: Chat) -> None:
    send(page, "/human")
    page.get_by_text("passed this to our support team").wait_for()
    chat.claim()
    chat.resolve_asking_csat()
    chat.wake()
    page.get_by_text("Please rate this conversation").wait_for()
    chips = page.locator(".chips button")
    assert chips.all_inner_texts() == ["1", "2", "3", "4", "5"]
    chips.nth(4).click()
    page.get_by_text("Thank you for your feedback!").wait_for()


def test_a_live_agent_reply_in_a_long_chat_is_scrolled_into_view(page: Any, chat: Chat) -> None:
    for n in range(14):
        send(page, f"message number {n} about my workspace export settings")
        page.locator(".msg--customer:not(.msg--pending)").nth(n).wait_for()
    page.reload()
    page.locator(".msg--customer").nth(13).wait_for()
    chat.agent_says(LONG_REPLY)
    reply = page.locator(".msg--agent").last
    reply.wait_for()
    page.wait_for_timeout(300)  # let any scrolling settle
    fits = page.evaluate(
        """() => {
            const log = document.getElementById("chat-log").getBoundingClientRect();
            const items = document.querySelectorAll(".msg--agent .msg__text");
            const text = items[items.length - 1].getBoundingClientRect();
            return {text: [text.top, text.bottom], log: [log.top, log.bottom]};
        }"""
    )
    top, bottom = fits["text"]
    log_top, log_bottom = fits["log"]
    assert bottom - top > 120, "the reply must be taller than the old 'near the bottom' slack"
    assert log_top - 1 <= top and bottom <= log_bottom + 1, fits


def test_after_a_reload_the_header_says_a_person_is_with_you(page: Any, chat: Chat) -> None:
    send(page, "/human")
    page.get_by_text("passed this to our support team").wait_for()
    chat.claim()
    page.reload()
    assert page.locator("#chat-status").inner_text() == "A person from support is with you"
