"""The WhatsApp channel's pure parts: signatures, payload normalization, message bodies."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import pytest

from bot.channels import whatsapp
from bot.channels.base import (
    Button,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    RetryLater,
    Unreachable,
)

SECRET = "app-secret-0123456789"


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _notification(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def _one(message: dict[str, Any], name: str | None = "Sheena") -> InboundMessage:
    base = {"from": "16505551234", "id": "wamid.A", "timestamp": "1749416383"}
    value: dict[str, Any] = {"messages": [{**base, **message}]}
    if name:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": "16505551234"}]
    (item,) = whatsapp.parse_payload(_notification(value))
    assert isinstance(item, InboundMessage)
    return item


def test_signature_of_the_raw_body_is_accepted() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    assert whatsapp.verify_signature(SECRET, body, _sign(body))


@pytest.mark.parametrize(
    ("secret", "header"),
    [
        (SECRET, None),
        (SECRET, "sha256=deadbeef"),
        (SECRET, _sign(b"other body")),
        (SECRET, _sign(b"{}", "other secret")),
        (None, _sign(b"{}")),
        ("", _sign(b"{}", "")),
    ],
)
def test_signature_check_fails_closed(secret: str | None, header: str | None) -> None:
    assert not whatsapp.verify_signature(secret, b"{}", header)


def test_text_message_keeps_wamid_sender_and_profile_name() -> None:
    message = _one({"type": "text", "text": {"body": "Does it come in blue?"}})
    assert (message.external_id, message.sender_id, message.sender_name) == (
        "wamid.A",
        "16505551234",
        "Sheena",
    )
    assert (message.kind, message.text) == ("text", "Does it come in blue?")


def test_slash_human_is_a_command() -> None:
    message = _one({"type": "text", "text": {"body": "/human please"}})
    assert (message.kind, message.command, message.command_args) == ("command", "human", "please")


def test_button_reply_becomes_a_callback_with_the_button_id() -> None:
    reply = {"type": "button_reply", "button_reply": {"id": "helpful:no:billing", "title": "No"}}
    message = _one({"type": "interactive", "interactive": reply})
    assert (message.kind, message.callback_data, message.text) == (
        "callback",
        "helpful:no:billing",
        "No",
    )


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("image", {"id": "1", "caption": "my error"}, ("photo", "my error")),
        ("sticker", {"id": "1"}, ("sticker", "")),
        ("audio", {"id": "1", "voice": True}, ("voice", "")),
        ("document", {"id": "1", "caption": "invoice.pdf"}, ("document", "invoice.pdf")),
        ("location", {"latitude": 1.0, "longitude": 2.0}, ("location", "")),
        ("order", {"catalog_id": "1"}, ("other", "")),
    ],
)
def test_media_and_unknown_types_keep_their_kind_and_caption(
    kind: str, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    message = _one({"type": kind, kind: body})
    assert (message.kind, message.text) == expected


def test_every_message_and_status_of_a_batch_is_returned_in_order() -> None:
    def change(wamid: str) -> dict[str, Any]:
        return {
            "field": "messages",
            "value": {
                "messages": [{"from": "1", "id": wamid, "type": "text", "text": {"body": "x"}}],
                "statuses": [{"id": f"{wamid}-out", "status": "read", "recipient_id": "1"}],
            },
        }

    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [change("a"), change("b")]}, {"changes": [change("c")]}],
    }
    items = whatsapp.parse_payload(payload)
    assert [getattr(i, "external_id", None) or i.provider_message_id for i in items] == [  # type: ignore[union-attr]
        "a",
        "a-out",
        "b",
        "b-out",
        "c",
        "c-out",
    ]


def test_failed_status_names_the_24_hour_window() -> None:
    value = {
        "statuses": [
            {"id": "wamid.B", "status": "failed", "errors": [{"code": 131047, "title": "Re"}]}
        ]
    }
    (status,) = whatsapp.parse_payload(_notification(value))
    assert isinstance(status, whatsapp.StatusUpdate)
    assert "24-hour window" in (status.error or "")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": [{"changes": "x"}]},
        _notification({"messages": [{"from": "1", "type": "text", "text": {"body": "no id"}}]}),
        _notification({"messages": [{"from": "1", "id": "x" * 129, "type": "text"}]}),
        _notification({"messages": [{"from": "1", "id": "a", "type": "text", "text": 5}]}),
    ],
)
def test_malformed_shapes_raise_value_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        whatsapp.parse_payload(payload)


def test_up_to_three_buttons_become_reply_buttons_with_short_titles() -> None:
    buttons = (Button("Yes, solved", "helpful:yes:x"), Button("No, I still need help now", "n"))
    body = whatsapp.build_message("1555", OutboundMessage("Did it help?", buttons))
    action = body["interactive"]["action"]["buttons"]
    assert body["type"] == "interactive"
    assert [b["reply"]["id"] for b in action] == ["helpful:yes:x", "n"]
    assert [b["reply"]["title"] for b in action] == ["Yes, solved", "No, I still need he…"]


def test_four_to_ten_buttons_become_a_list_message_with_one_row_each() -> None:
    buttons = tuple(Button(f"Score {i}", f"csat:{i}:1") for i in range(1, 6))
    body = whatsapp.build_message("1555", OutboundMessage("How did we do?", buttons))
    assert body["type"] == "interactive"
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "How did we do?"}
    assert 0 < len(interactive["action"]["button"]) <= 20
    (section,) = interactive["action"]["sections"]
    assert [(r["id"], r["title"]) for r in section["rows"]] == [
        (f"csat:{i}:1", f"Score {i}") for i in range(1, 6)
    ]


def test_list_rows_titles_are_cut_to_24_characters() -> None:
    buttons = tuple(Button(f"Option number {i} with a long label", f"o:{i}") for i in range(4))
    body = whatsapp.build_message("1555", OutboundMessage("Pick one", buttons))
    rows = body["interactive"]["action"]["sections"][0]["rows"]
    assert [len(r["title"]) for r in rows] == [24] * 4
    assert rows[0]["title"] == "Option number 0 with a …"


def test_more_than_ten_buttons_fall_back_to_text_listing_the_options() -> None:
    buttons = tuple(Button(f"Choice {i}", f"c:{i}") for i in range(1, 12))
    body = whatsapp.build_message("1555", OutboundMessage("Which one?", buttons))
    assert body["type"] == "text"
    assert body["text"]["body"].endswith("• Choice 11")


def test_options_whose_cut_titles_collide_fall_back_to_text() -> None:
    buttons = tuple(Button("A very long option title that is cut " + c, c) for c in "abcd")
    body = whatsapp.build_message("1555", OutboundMessage("Which one?", buttons))
    assert body["type"] == "text"


def _response(status: int, code: int | None = None, **headers: str) -> httpx.Response:
    error = {"error": {"code": code, "message": "m"}} if code is not None else {}
    return httpx.Response(status, json=error, headers=headers)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_response(429, 130429), RetryLater),
        (_response(400, 131056), RetryLater),
        (_response(503), RetryLater),
        (_response(401, 190), RetryLater),
        (_response(400, 131026), Unreachable),
        (_response(400, 131047), PermanentError),
        (_response(400, 100), PermanentError),
    ],
)
def test_graph_api_errors_map_to_send_errors(response: httpx.Response, expected: type) -> None:
    error = whatsapp._map_error(response)
    assert type(error) is expected


def test_retry_after_header_is_honoured() -> None:
    error = whatsapp._map_error(_response(429, 130429, **{"Retry-After": "7"}))
    assert isinstance(error, RetryLater)
    assert error.delay == 7.0
