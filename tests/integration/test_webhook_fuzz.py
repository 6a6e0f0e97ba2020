"""Bad input on the Telegram webhook: never a 500, never a partial write, nothing lost."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from handoff.models import InboundEvent, Message
from tests.conftest import WEBHOOK_SECRET
from tests.factories import next_update_id, tg_text_update
from tests.integration.conftest import Service

FIXTURE_OK = [HealthCheck.function_scoped_fixture]
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _stored(service: Service) -> int:
    with Session(service.services.engine) as session:
        messages = session.exec(select(func.count()).select_from(Message)).one()
        events = session.exec(select(func.count()).select_from(InboundEvent)).one()
    return int(messages) + int(events)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_are_acknowledged_and_kept(service: Service, body: bytes) -> None:
    before = _stored(service)
    response = service.client.post("/webhooks/telegram", content=body, headers=HEADERS)
    assert response.status_code == 200
    assert _stored(service) == before + 1 or response.json().get("stored") is False


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=json_values)
def test_arbitrary_json_under_a_valid_update_id_never_fails(service: Service, message) -> None:
    update = {"update_id": next_update_id(), "message": message}
    response = service.client.post(
        "/webhooks/telegram", content=json.dumps(update), headers=HEADERS
    )
    assert response.status_code == 200


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=1, max_size=200))
def test_any_text_message_is_stored_exactly_once(service: Service, text: str) -> None:
    update = tg_text_update(777, text)
    first = service.post_update(update)
    second = service.post_update(update)
    assert first.status_code == second.status_code == 200
    with Session(service.services.engine) as session:
        rows = session.exec(
            select(Message).where(Message.external_id == str(update["update_id"]))
        ).all()
    assert len(rows) == 1


def test_nul_bytes_and_lone_surrogates_are_stored_safely(service: Service) -> None:
    raw = json.dumps(tg_text_update(778, "x")).replace('"x"', '"pass\\u0000word \\ud800 reset"')
    response = service.client.post("/webhooks/telegram", content=raw, headers=HEADERS)
    assert response.status_code == 200
    with Session(service.services.engine) as session:
        message = session.exec(select(Message).where(Message.direction == "inbound")).one()
    assert message.text == "pass\ufffdword \ufffd reset"


def test_a_flooding_chat_is_stored_but_not_answered_beyond_the_limit(service: Service) -> None:
    limit = service.services.models.config().policy.rate_limit.max_messages
    for i in range(limit + 5):
        assert service.post_update(tg_text_update(779, f"hello number {i}")).status_code == 200
    with Session(service.services.engine) as session:
        inbound = session.exec(
            select(func.count()).select_from(Message).where(Message.direction == "inbound")
        ).one()
        outbound = session.exec(
            select(func.count()).select_from(Message).where(Message.direction == "outbound")
        ).one()
    assert inbound == limit + 5
    assert outbound <= limit + 1  # at most one reply per answered message plus one notice
