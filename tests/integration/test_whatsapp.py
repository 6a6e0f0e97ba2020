"""The WhatsApp channel end to end: signed Cloud API webhooks in, Graph API sends out."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from bot.app import create_app
from handoff.models import Contact, Handoff, InboundEvent, Message, OutboxEntry
from tests.conftest import make_settings
from tests.fakes.whatsapp_api import FakeGraphApi, start_fake_graph_api

ACCESS_TOKEN = "EAAGtestACCESStoken0123456789abcdef"
APP_SECRET = "whatsapp-app-secret-0123456789"
VERIFY_TOKEN = "whatsapp-verify-token-0123456789"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- payload builders (shapes as Meta's messages webhook reference shows them) -------------

_wamids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFF{next(_wamids):08d}"


def wa_message(wa_id: str, kind: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": wa_id,
        "id": new_wamid(),
        "timestamp": str(int(time.time())),
        "type": kind,
    }
    if body is not None:
        message[kind] = body
    return message


def wa_text(wa_id: str, text: str) -> dict[str, Any]:
    return wa_message(wa_id, "text", {"body": text})


def wa_button_reply(wa_id: str, data: str, title: str) -> dict[str, Any]:
    message = wa_message(
        wa_id,
        "interactive",
        {"type": "button_reply", "button_reply": {"id": data, "title": title}},
    )
    message["context"] = {"from": "15550783881", "id": new_wamid()}
    return message


def wa_status(wamid: str, status: str, wa_id: str, error_code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": wa_id,
    }
    if error_code is not None:
        item["errors"] = [{"code": error_code, "title": "Re-engagement message"}]
    return item


def wa_change(
    messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
    statuses: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        senders = dict.fromkeys(m["from"] for m in messages)
        value["contacts"] = [
            {"profile": {"name": f"Customer {s[-4:]}"}, "wa_id": s} for s in senders
        ]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def wa_notification(*entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each argument is one entry's list of changes."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": changes} for changes in entries],
    }


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- the running app ------------------------------------------------------------------------


class WhatsAppService:
    def __init__(self, client: TestClient, fake: FakeGraphApi) -> None:
        self.client = client
        self.fake = fake
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def post_raw(self, body: bytes, signature: str | None = "valid") -> Any:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = sign(body) if signature == "valid" else signature
        return self.client.post("/webhooks/whatsapp", content=body, headers=headers)

    def post(self, payload: dict[str, Any], signature: str | None = "valid") -> Any:
        return self.post_raw(json.dumps(payload).encode(), signature)

    def say(self, wa_id: str, text: str) -> Any:
        return self.post(wa_notification([wa_change([wa_text(wa_id, text)])]))

    def count(self, model: type, *where: Any) -> int:
        with Session(self.services.engine) as session:
            stmt = select(func.count()).select_from(model)
            for clause in where:
                stmt = stmt.where(clause)
            return int(session.exec(stmt).one())

    def outbox(self) -> list[OutboxEntry]:
        with Session(self.services.engine) as session:
            return list(session.exec(select(OutboxEntry).order_by(OutboxEntry.id)).all())

    def wait_for_outbox(self, predicate: Any, timeout: float = 10.0) -> list[OutboxEntry]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.outbox()
            if predicate(entries):
                return entries
            time.sleep(0.02)
        raise AssertionError(f"outbox condition not met: {self.outbox()}")


@pytest.fixture(scope="module")
def fake_graph_server() -> Iterator[FakeGraphApi]:
    fake, server = start_fake_graph_api(ACCESS_TOKEN)
    yield fake
    server.__exit__(None, None, None)


@pytest.fixture
def wa(
    database_url: str, model_path: Path, fake_graph_server: FakeGraphApi
) -> Iterator[WhatsAppService]:
    fake_graph_server.reset()
    app_settings = make_settings(
        database_url,
        model_path,
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_api_base_url=fake_graph_server.base_url,
    )
    with TestClient(create_app(app_settings)) as client:
        yield WhatsAppService(client, fake_graph_server)


# -- verification ---------------------------------------------------------------------------


def test_verification_echoes_the_challenge_when_the_token_matches(wa: WhatsAppService) -> None:
    response = wa.client.get(
        "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_verification_without_the_right_token_is_refused(
    wa: WhatsAppService, params: dict[str, str]
) -> None:
    assert wa.client.get("/webhooks/whatsapp", params=params).status_code == 403


# -- inbound --------------------------------------------------------------------------------


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "md5=abc", "wrong"])
def test_bad_or_missing_signature_is_refused_and_nothing_stored(
    wa: WhatsAppService, signature: str | None
) -> None:
    response = wa.post(wa_notification([wa_change([wa_text("15550001", "hello")])]), signature)
    assert response.status_code == 403
    assert wa.count(Message) == 0
    assert wa.count(InboundEvent) == 0


def test_signature_with_another_secret_is_refused(wa: WhatsAppService) -> None:
    body = json.dumps(wa_notification([wa_change([wa_text("15550002", "hello")])])).encode()
    response = wa.post_raw(body, signature=sign(body, "another-secret"))
    assert response.status_code == 403
    assert wa.count(Message) == 0


def test_every_message_of_a_batch_is_stored_and_answered(wa: WhatsAppService) -> None:
    numbers = ["15550011", "15550012", "15550013", "15550014"]
    texts = [
        "how do I reset my password",
        "where can I download my invoices?",
        "I want to talk to a person",
        "how do I turn on two factor authentication",
    ]
    messages = [wa_text(n, t) for n, t in zip(numbers, texts, strict=True)]
    payload = wa_notification(
        [wa_change(messages[0:1]), wa_change(messages[1:2])],
        [wa_change(messages[2:4])],
    )
    response = wa.post(payload)
    assert response.status_code == 200
    assert response.json()["messages"] == 4
    assert wa.count(Message, Message.direction == "inbound") == 4
    wa.fake.wait_for(lambda f: len(f.delivered()) >= 4)
    assert sorted(c.body["to"] for c in wa.fake.delivered()) == numbers
    with Session(wa.services.engine) as session:
        names = session.exec(select(Contact.name).order_by(Contact.id)).all()
    assert names == [f"Customer {n[-4:]}" for n in numbers]


def test_same_notification_twice_is_stored_once_and_answered_once(wa: WhatsAppService) -> None:
    payload = wa_notification([wa_change([wa_text("15550021", "where are my invoices?")])])
    first, second = wa.post(payload), wa.post(payload)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicates"] == 1
    assert wa.count(Message, Message.direction == "inbound") == 1
    wa.fake.wait_for(lambda f: len(f.delivered("15550021")) >= 1)
    assert len(wa.outbox()) == 1
    assert len(wa.fake.delivered("15550021")) == 1


def test_password_question_is_answered_with_reply_buttons(wa: WhatsAppService) -> None:
    wa.say("15550031", "I forgot my password, how do I reset it?")
    wa.fake.wait_for(lambda f: len(f.delivered("15550031")) == 1)
    call = wa.fake.delivered("15550031")[0]
    assert call.phone_number_id == PHONE_NUMBER_ID
    assert call.authorization == f"Bearer {ACCESS_TOKEN}"
    assert call.body["messaging_product"] == "whatsapp"
    interactive = call.body["interactive"]
    assert interactive["type"] == "button"
    assert wa.services.settings.reset_url in interactive["body"]["text"]
    replies = [b["reply"] for b in interactive["action"]["buttons"]]
    assert [r["id"] for r in replies] == ["helpful:yes:password_reset", "helpful:no:password_reset"]
    assert all(len(r["title"]) <= 20 for r in replies)
    entry = wa.wait_for_outbox(lambda es: es[0].status == "sent")[0]
    assert entry.provider_message_id == call.wamid


def test_didnt_help_button_reply_escalates(wa: WhatsAppService) -> None:
    wa.say("15550041", "how do I reset my password")
    wa.fake.wait_for(lambda f: len(f.delivered("15550041")) == 1)
    reply = wa_button_reply("15550041", "helpful:no:password_reset", "No, talk to a person")
    assert wa.post(wa_notification([wa_change([reply])])).status_code == 200
    with Session(wa.services.engine) as session:
        handoff = session.exec(select(Handoff)).one()
    assert handoff.status == "waiting"
    wa.fake.wait_for(lambda f: len(f.delivered("15550041")) == 2)
    assert "person will reply" in wa.fake.texts("15550041")[1]


def test_an_emoji_only_message_is_asked_for_words_like_a_sticker(wa: WhatsAppService) -> None:
    wa.say("15550052", "\U0001f44d\U0001f44d")
    wa.fake.wait_for(lambda f: len(f.delivered("15550052")) == 1)
    assert "describe your question" in wa.fake.texts("15550052")[0]
    assert wa.count(Handoff) == 0


def test_sticker_gets_a_polite_text_only_reply(wa: WhatsAppService) -> None:
    sticker = wa_message("15550051", "sticker", {"mime_type": "image/webp", "id": "1234567890"})
    wa.post(wa_notification([wa_change([sticker])]))
    wa.fake.wait_for(lambda f: len(f.delivered("15550051")) == 1)
    assert "only read text" in wa.fake.texts("15550051")[0]
    with Session(wa.services.engine) as session:
        message = session.exec(select(Message).where(Message.direction == "inbound")).one()
    assert message.kind == "sticker"


def test_reaction_is_kept_but_not_answered(wa: WhatsAppService) -> None:
    reaction = wa_message("15550052", "reaction", {"message_id": new_wamid(), "emoji": "👍"})
    assert wa.post(wa_notification([wa_change([reaction])])).status_code == 200
    with Session(wa.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert (event.status, event.external_id) == ("ignored", reaction["id"])
    assert wa.count(Message) == 0
    assert wa.outbox() == []


def test_malformed_json_with_valid_signature_is_acknowledged_and_dead_lettered(
    wa: WhatsAppService,
) -> None:
    response = wa.post_raw(b'{"object": "whatsapp_business_account", "entry": [')
    assert response.status_code == 200
    with Session(wa.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert event.status == "dead"
    assert event.body.startswith('{"object": "whatsapp_business_account"')


def test_message_without_an_id_is_dead_lettered_not_lost(wa: WhatsAppService) -> None:
    message = wa_text("15550053", "hello")
    del message["id"]
    assert wa.post(wa_notification([wa_change([message])])).status_code == 200
    with Session(wa.services.engine) as session:
        event = session.exec(select(InboundEvent)).one()
    assert event.status == "dead"
    assert "hello" in event.body


def test_oversized_body_is_refused_before_parsing(wa: WhatsAppService) -> None:
    big = b"x" * (wa.services.settings.max_body_bytes + 1)
    assert wa.post_raw(big).status_code == 413
    assert wa.count(InboundEvent) == 0


# -- delivery receipts ----------------------------------------------------------------------


def _answered_wamid(wa: WhatsAppService, wa_id: str) -> str:
    wa.say(wa_id, "where can I download my invoices?")
    entry = wa.wait_for_outbox(lambda es: bool(es) and es[0].status == "sent")[0]
    assert entry.provider_message_id is not None
    return entry.provider_message_id


def test_delivery_receipts_never_go_backwards(wa: WhatsAppService) -> None:
    wamid = _answered_wamid(wa, "15550061")
    for status in ("delivered", "sent"):
        response = wa.post(wa_notification([wa_change(statuses=[wa_status(wamid, status, "x")])]))
        assert response.status_code == 200
    assert wa.outbox()[0].delivery_status == "delivered"
    wa.post(wa_notification([wa_change(statuses=[wa_status(wamid, "read", "x")])]))
    assert wa.outbox()[0].delivery_status == "read"


def test_failed_receipt_records_the_24_hour_window_reason(wa: WhatsAppService) -> None:
    wamid = _answered_wamid(wa, "15550062")
    failed = wa_status(wamid, "failed", "15550062", error_code=131047)
    wa.post(wa_notification([wa_change(statuses=[failed])]))
    entry = wa.outbox()[0]
    assert entry.delivery_status == "failed"
    assert "24-hour window" in (entry.last_error or "")
    wa.post(wa_notification([wa_change(statuses=[wa_status(wamid, "read", "x")])]))
    assert wa.outbox()[0].delivery_status == "failed"


# -- outbound failures ----------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, 130429), (400, 131056), (503, None)])
def test_rate_limited_or_failing_send_is_retried_and_arrives_once(
    wa: WhatsAppService, status: int, code: int | None
) -> None:
    wa.fake.fail_next(status, code)
    wa.say("15550071", "where can I download my invoices?")
    entry = wa.wait_for_outbox(lambda es: bool(es) and es[0].status == "sent")[0]
    assert entry.attempts == 2
    assert len(wa.fake.calls) == 2
    assert len(wa.fake.delivered("15550071")) == 1


def test_outside_the_24_hour_window_dead_letters_with_a_template_hint(
    wa: WhatsAppService,
) -> None:
    wa.fake.fail_next(400, 131047)
    wa.say("15550081", "where can I download my invoices?")
    entry = wa.wait_for_outbox(lambda es: bool(es) and es[0].status == "dead")[0]
    assert entry.last_error == (
        "outside WhatsApp's 24-hour window: a template message is needed (error 131047)"
    )
    assert wa.fake.delivered() == []
    assert wa.count(Contact, Contact.unreachable == True) == 0  # noqa: E712 (SQL)


def test_undeliverable_number_is_dead_lettered_and_flagged(wa: WhatsAppService) -> None:
    wa.fake.fail_next(400, 131026)
    wa.say("15550082", "where can I download my invoices?")
    entry = wa.wait_for_outbox(lambda es: bool(es) and es[0].status == "dead")[0]
    assert "131026" in (entry.last_error or "")
    assert wa.count(Contact, Contact.unreachable == True) == 1  # noqa: E712 (SQL)


# -- fuzz -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {
        "from": st.text(min_size=1, max_size=20),
        "id": st.text(min_size=1, max_size=140),
        "type": st.sampled_from(["text", "interactive", "button", "image", "reaction", "x"])
        | json_values,
    },
    optional={
        "text": st.fixed_dictionaries({"body": st.text()}) | json_values,
        "interactive": st.fixed_dictionaries(
            {
                "type": st.just("button_reply"),
                "button_reply": st.fixed_dictionaries(
                    {"id": st.text(max_size=300), "title": st.text(max_size=30)}
                ),
            }
        )
        | json_values,
        "button": st.dictionaries(st.sampled_from(["payload", "text"]), json_values),
        "image": st.dictionaries(st.sampled_from(["caption", "id"]), json_values),
    },
) | st.dictionaries(st.sampled_from(["from", "id", "type", "text"]), json_values)


@FUZZ
@given(payload=json_values)
def test_arbitrary_signed_json_never_fails(wa: WhatsAppService, payload: Any) -> None:
    assert wa.post_raw(json.dumps(payload).encode()).status_code == 200


@FUZZ
@given(messages=st.lists(message_like, max_size=3), statuses=st.lists(json_values, max_size=2))
def test_arbitrary_messages_in_a_valid_envelope_never_fail(
    wa: WhatsAppService, messages: list[Any], statuses: list[Any]
) -> None:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "messages": messages}
    if statuses:
        value["statuses"] = statuses
    payload = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}
    assert wa.post(payload).status_code == 200
