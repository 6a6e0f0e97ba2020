"""The web chat channel end to end: the widget's API, visitor isolation and the SSE stream."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from bot.app import create_app
from bot.channels.webchat import COOKIE_NAME, VisitorCookies
from handoff import replies
from handoff.models import (
    Conversation,
    Feedback,
    Handoff,
    InboundEvent,
    Message,
    OutboxEntry,
    User,
)
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi, ServerThread

API = "/chat/api/messages"
SECRET = "test-webchat-secret-0123456789"


@pytest.fixture
def app(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> FastAPI:
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        webchat_secret=SECRET,
    )
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def engine_of(app: FastAPI) -> Any:
    return app.state.services.engine


def count(app: FastAPI, model: type, *where: Any) -> int:
    with Session(engine_of(app)) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(session.exec(stmt).one())


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def new_id() -> str:
    return str(uuid.uuid4())


def say(client: TestClient | httpx.Client, text: str, **extra: Any) -> httpx.Response:
    return client.post(
        API, json={"client_id": extra.pop("client_id", new_id()), "text": text, **extra}
    )


def history(client: TestClient | httpx.Client, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(API, params={"after": after})
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


# -- answers and handoffs --------------------------------------------------------------------


def test_password_question_gets_the_faq_answer_in_the_history(
    app: FastAPI, client: TestClient
) -> None:
    client_id = new_id()
    response = say(client, "I forgot my password, how do I reset it?", client_id=client_id)
    assert response.status_code == 200
    assert response.json()["action"] == "answered"
    messages = history(client)
    assert [m["author"] for m in messages] == ["customer", "bot"]
    assert messages[0]["client_id"] == client_id
    assert app.state.services.settings.reset_url in messages[1]["text"]
    assert [b["data"] for b in messages[1]["buttons"]] == [
        "helpful:yes:password_reset",
        "helpful:no:password_reset",
    ]
    assert count(app, Handoff) == 0


def test_reply_is_delivered_through_the_outbox_to_the_webchat_sender(
    app: FastAPI, client: TestClient
) -> None:
    say(client, "where can I download my invoices?")
    wait_until(lambda: count(app, OutboxEntry, OutboxEntry.status == "sent") == 1)
    assert count(app, OutboxEntry, OutboxEntry.channel == "webchat") == 1


def test_same_client_id_twice_is_stored_once_and_answered_once(
    app: FastAPI, client: TestClient
) -> None:
    client_id = new_id()
    first = say(client, "where can I download my invoices?", client_id=client_id)
    second = say(client, "where can I download my invoices?", client_id=client_id)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert count(app, Message, Message.direction == "inbound") == 1
    assert count(app, OutboxEntry) == 1
    assert [m["author"] for m in history(client)] == ["customer", "bot"]


def test_asking_for_a_person_creates_a_handoff(app: FastAPI, client: TestClient) -> None:
    response = say(client, "I want to talk to a person")
    assert response.json()["action"] == "escalated"
    with Session(engine_of(app)) as session:
        handoff = session.exec(select(Handoff)).one()
        conversation = session.get(Conversation, handoff.conversation_id)
    assert "requested_human" in handoff.reasons
    assert conversation is not None and conversation.channel == "webchat"
    assert "person will reply" in history(client)[-1]["text"]


def test_human_command_creates_a_handoff(app: FastAPI, client: TestClient) -> None:
    assert say(client, "/human").json()["action"] == "escalated"
    assert count(app, Handoff) == 1


def test_pressing_a_chip_records_feedback_and_moves_the_buttons(
    app: FastAPI, client: TestClient
) -> None:
    say(client, "how can i reset my password")
    response = client.post(
        API,
        json={
            "client_id": new_id(),
            "text": "Yes, solved",
            "callback_data": "helpful:yes:password_reset",
        },
    )
    assert response.json()["action"] == "answered"
    with Session(engine_of(app)) as session:
        feedback = session.exec(select(Feedback)).one()
    assert (feedback.kind, feedback.intent) == ("helpful", "password_reset")
    messages = history(client)
    assert [m["text"] for m in messages if m["author"] == "customer"][-1] == "Yes, solved"
    assert [m["buttons"] for m in messages if m["author"] == "bot"][0] == []  # stale chips gone


def test_history_after_an_id_returns_only_newer_messages(client: TestClient) -> None:
    say(client, "how can i reset my password")
    first = history(client)
    say(client, "where are my invoices?")
    newer = history(client, after=first[-1]["id"])
    assert [m["author"] for m in newer] == ["customer", "bot"]
    assert all(m["id"] > first[-1]["id"] for m in newer)


def test_html_looking_message_comes_back_as_plain_text(client: TestClient) -> None:
    text = "<script>alert('x')</script><b>my password</b> & <img src=x onerror=alert(1)>"
    say(client, text)
    response = client.get(API)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["messages"][0]["text"] == text


# -- invalid input ---------------------------------------------------------------------------

GOOD_ID = "0123456789abcdef"


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"client_id": GOOD_ID, "text": "   "}, 422, "empty"),
        ({"client_id": GOOD_ID, "text": "a" * 20_000}, 422, "longer than 10000"),
        ({"client_id": "bad id!", "text": "hello"}, 422, "client_id"),
        ({"client_id": "short", "text": "hello"}, 422, "client_id"),
        ({"text": "hello"}, 422, "client_id"),
        ({"client_id": GOOD_ID, "text": 42}, 422, "text must be a string"),
        ({"client_id": GOOD_ID, "callback_data": "x" * 65}, 422, "callback_data"),
        ([1, 2], 422, "JSON object"),
        (b"this is not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
    ],
)
def test_invalid_input_is_refused_clearly_and_nothing_is_stored(
    app: FastAPI, client: TestClient, body: Any, status: int, problem: str
) -> None:
    if isinstance(body, bytes):
        response = client.post(API, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(API, json=body)
    assert response.status_code == status
    assert problem in json.dumps(response.json()["detail"])
    assert count(app, Message) == 0
    assert count(app, InboundEvent) == 0


def test_body_over_the_limit_is_refused(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake_bot_api.base_url,
        max_body_bytes=2048,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        response = say(client, "a" * 5000)
        assert response.status_code == 413
        assert count(app, Message) == 0


# -- visitors --------------------------------------------------------------------------------


def test_two_visitors_never_see_each_others_messages(app: FastAPI, client: TestClient) -> None:
    say(client, "my secret password question")
    with contextlib.closing(TestClient(app)) as other:
        assert history(other) == []
        say(other, "where are my invoices?")
        theirs = history(other)
    mine = history(client)
    assert {m["id"] for m in mine}.isdisjoint({m["id"] for m in theirs})
    assert "invoices" not in json.dumps(mine)
    assert "secret password" not in json.dumps(theirs)
    assert count(app, Conversation) == 2


def test_a_forged_cookie_is_a_new_visitor(app: FastAPI, client: TestClient) -> None:
    say(client, "my secret password question")
    genuine = client.cookies[COOKIE_NAME]
    visitor_id = genuine.partition(".")[0]
    forged = f"{visitor_id}.{'A' * 43}"
    with contextlib.closing(TestClient(app)) as attacker:
        response = attacker.get(API, headers={"Cookie": f"{COOKIE_NAME}={forged}"})
    assert response.json()["messages"] == []
    assert COOKIE_NAME in response.headers["set-cookie"]  # a fresh identity is issued


def test_visitor_cookie_signature_is_checked() -> None:
    cookies = VisitorCookies(SECRET)
    visitor_id, value = cookies.issue()
    assert cookies.verify(value) == visitor_id
    assert VisitorCookies("another-secret-0123456789").verify(value) is None
    assert cookies.verify(value[:-1] + ("B" if value[-1] != "B" else "C")) is None
    assert cookies.verify("not-a-cookie") is None


def test_chat_page_serves_the_widget_and_sets_a_safe_cookie(client: TestClient) -> None:
    page = client.get("/chat")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/chat.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/chat" in cookie
    script = client.get("/static/chat.js")
    assert script.status_code == 200
    assert "textContent" in script.text and ".innerHTML" not in script.text
    assert client.get("/static/chat.css").status_code == 200


# -- the live stream (a real server: TestClient buffers whole responses) ---------------------


@pytest.fixture
def live(app: FastAPI) -> Iterator[httpx.Client]:
    server = ServerThread(app)
    server.server.config.lifespan = "on"  # load the model and run the outbox worker
    with server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
        http.get("/chat")  # the visitor cookie
        yield http


def read_events(lines: Iterator[str], until: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """Parse SSE lines into (id, message) pairs up to the first message matching ``until``."""
    events: list[Any] = []
    event_id = None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            message = json.loads(line[6:])
            events.append((event_id, message))
            if until(message):
                return events
    raise AssertionError(f"stream ended before the expected event; got {events}")


def test_stream_pushes_the_bot_reply_and_an_agent_reply(app: FastAPI, live: httpx.Client) -> None:
    with live.stream("GET", "/chat/api/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"
        assert say(live, "I want to talk to a person").json()["action"] == "escalated"
        events = read_events(lines, lambda m: m["author"] == "bot")
        assert [m["author"] for _, m in events] == ["customer", "bot"]
        assert all(event_id == m["id"] for event_id, m in events)

        with Session(engine_of(app)) as session:
            agent = User(email="alice@example.test", name="Alice Agent", role="agent")
            session.add(agent)
            session.flush()
            conversation = session.exec(select(Conversation)).one()
            replies.queue_reply(
                session,
                conversation,
                "Hi, Alice here. <b>Let me check.</b>",
                author="agent",
                author_user_id=agent.id,
            )
            session.commit()
        _, reply = read_events(lines, lambda m: m["author"] == "agent")[-1]
    assert reply["text"] == "Hi, Alice here. <b>Let me check.</b>"
    assert reply["author_name"] == "Alice"
    wait_until(lambda: count(app, OutboxEntry, OutboxEntry.status != "sent") == 0)


def test_stream_resumes_after_the_last_event_id(live: httpx.Client) -> None:
    say(live, "how do I reset my password?")
    customer, bot = history(live)
    headers = {"Last-Event-ID": str(customer["id"])}
    with live.stream("GET", "/chat/api/stream", headers=headers) as stream:
        events = read_events(stream.iter_lines(), lambda m: True)
    assert events == [(bot["id"], bot)]


def test_stream_ends_when_the_app_shuts_down(app: FastAPI, live: httpx.Client) -> None:
    with live.stream("GET", "/chat/api/stream") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"
        app.state.services.webchat.hub.close()  # what the lifespan does on shutdown
        rest = list(lines)  # returns only once the server ends the response
    assert not any(line.startswith("data:") for line in rest)
