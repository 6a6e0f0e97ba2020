"""Issue 13 item 5: inputs from outside that answered 500.

The web chat refuses them with a 4xx; the Telegram webhook (with the right secret) keeps them
as dead letters and answers 200 — a 500 would make Telegram redeliver the update forever and
hold back the chat's later updates.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, select

from handoff.models import InboundEvent
from tests.conftest import WEBHOOK_SECRET
from tests.factories import next_update_id, tg_text_update
from tests.integration.conftest import Service

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}


def _deep(levels: int) -> bytes:
    """A text update carrying an extra field nested ``levels`` deep (built as text: json.dumps
    itself refuses such depth)."""
    update = json.dumps(tg_text_update(4242, "hi"))
    nested = '{"n": ' * levels + '"x"' + "}" * levels
    return update[:-1].encode() + b', "extra": ' + nested.encode() + b"}"


def test_a_web_chat_body_nested_100000_deep_gets_a_400(service: Service) -> None:
    r = service.client.post(
        "/chat/api/messages", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400


@pytest.mark.parametrize("after", ["9223372036854775808", "1" + "0" * 40])
def test_a_web_chat_history_after_a_huge_id_gets_a_422(service: Service, after: str) -> None:
    assert service.client.get(f"/chat/api/messages?after={after}").status_code == 422


def test_a_web_chat_stream_ignores_a_huge_last_event_id(service: Service) -> None:
    # only the headers matter: the stream's first line is read, then the stream is dropped
    with service.client.stream("GET", "/chat/api/stream", headers={"Last-Event-ID": "9" * 30}) as r:
        assert r.status_code == 200


def _text_list() -> dict[str, Any]:
    update = tg_text_update(4243, "hi")
    update["message"]["text"] = ["x"]
    return update


def _no_chat() -> dict[str, Any]:
    update = tg_text_update(4244, "hi")
    del update["message"]["chat"]
    return update


def _callback_without_from() -> dict[str, Any]:
    return {"update_id": next_update_id(), "callback_query": {"id": "1", "data": "x"}}


@pytest.mark.parametrize(
    "make",
    [_text_list, _no_chat, _callback_without_from, lambda: _deep(100), lambda: _deep(5000)],
    ids=["text-list", "no-chat", "callback-without-from", "nested-100", "nested-5000"],
)
def test_a_malformed_telegram_update_is_dead_lettered_with_200(service: Service, make: Any) -> None:
    update = make()
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    r = service.client.post("/webhooks/telegram", content=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["dead_letter"] is True
    with Session(service.services.engine) as s:
        events = s.exec(select(InboundEvent).where(InboundEvent.status == "dead")).all()
    assert len(events) == 1


def test_a_telegram_body_nested_100000_deep_is_dead_lettered_with_200(service: Service) -> None:
    r = service.client.post("/webhooks/telegram", content=b"[" * 100_000, headers=HEADERS)
    assert r.status_code == 200
    assert r.json()["dead_letter"] is True
