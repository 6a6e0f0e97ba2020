"""Issue 15: learning from escalations — unanswered questions become suggestions, an admin
accepts one, the gated retrain serves the new intent (or keeps the old model and says why).

Each app gets its own copies of the FAQ, the policy and the model (a retrain replaces them).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.settings import ROOT
from handoff import corrections, metrics, privacy, suggestions
from handoff.access import Principal
from handoff.models import Contact, Conversation, Handoff, Message, Prompt, utcnow
from handoff.prompts import CLARIFY
from tests.factories import tg_text_update
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.desk_support import VIP_CHAT, Desk, seeded_desk

SECRET = "test-webchat-secret-0123456789"
CHAT = "/chat/api/messages"

# A dozen ways of asking whether the product works with a screen reader: a topic the FAQ
# does not cover. The first four come from one visitor who rephrases while waiting.
SCREEN_READER = [
    "Is your app accessible for screen reader users?",
    "does the product work with a screen reader like JAWS or NVDA",
    "do you support screen readers",
    "which screen readers have you tested with",
    "Our blind colleague uses a screen reader, will it work with your tool?",
    "is the web app compatible with screen readers such as VoiceOver",
    "hello, is there screen reader compatibility",
    "what accessibility features do you have for screen reader users",
    "can visually impaired people navigate it with a screen reader",
    "does your keyboard navigation work together with screen readers",
    "screen reader users on our team need access, is that supported?",
    "we rely on screen readers, can we use your software",
]
UNRELATED = [
    "can I get a custom domain for our workspace",
    "how do recurring tasks work",
    "is there a limit on the size of file uploads",
]
ANSWER = (
    "Yes: {{ product_name }} works with the JAWS, NVDA and VoiceOver screen readers, and every"
    " page can be used with the keyboard alone."
)


def _app(
    database_url: str, model_path: Path, fake: FakeBotApi, tmp_path: Path, **overrides: Any
) -> Iterator[Desk]:
    faq = tmp_path / "faq"
    shutil.copytree(ROOT / "data" / "faq", faq)
    policy = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "data" / "policy.yaml", policy)
    model = tmp_path / "model" / model_path.name
    model.parent.mkdir()
    for file in model_path.parent.iterdir():  # the model and its metadata beside it
        shutil.copy(file, model.parent / file.name)
    yield from seeded_desk(
        database_url,
        model,
        fake,
        faq_path=faq,
        policy_path=policy,
        webchat_secret=SECRET,
        scheduler_enabled=False,
        config_reload_seconds=0,
        **overrides,
    )


@pytest.fixture
def desk(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Desk]:
    yield from _app(database_url, model_path, fake_bot_api, tmp_path)


def visitor(d: Desk) -> TestClient:
    """A new web chat visitor (its own cookie jar) on the running app."""
    return TestClient(d.client.app)


def ask(client: TestClient, text: str) -> dict[str, Any]:
    response = client.post(CHAT, json={"client_id": f"c{time.monotonic_ns()}", "text": text})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def message_id(d: Desk, text: str) -> int:
    with Session(d.engine) as s:
        found = s.exec(select(Message.id).where(Message.text == text)).first()
    assert found is not None, text
    return found


def ask_everything(d: Desk, questions: list[str], *, one_visitor_for: int = 4) -> None:
    """The first ``one_visitor_for`` questions from one visitor (rephrasing while waiting),
    each of the others from a visitor of its own; every visitor's first one is handed over."""
    same = visitor(d)
    for i, text in enumerate(questions):
        result = ask(same if i < one_visitor_for else visitor(d), text)
        expected = "forwarded" if 0 < i < one_visitor_for else "escalated"
        assert result["action"] == expected, (text, result)


def suggestion_with(listed: list[dict[str, Any]], ids: set[int]) -> dict[str, Any]:
    best = max(listed, key=lambda s: len(ids & {q["message_id"] for q in s["representatives"]}))
    return best


def all_ids(d: Desk, suggestion_id: int) -> set[int]:
    with Session(d.engine) as s:
        return set(suggestions.get(s, suggestion_id).message_ids)


def wait_for_retrain(d: Desk, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = d.api("GET", "/model", "admin")
        assert model.status_code == 200, model.text
        if not model.json()["retrain"]["running"]:
            body: dict[str, Any] = model.json()
            return body
        time.sleep(0.5)
    raise AssertionError("the retrain did not finish")


# ---------------------------------------------------------------------- the whole flow
def test_unanswered_questions_become_one_suggestion_and_accepting_it_teaches_the_bot(
    desk: Desk,
) -> None:
    ask_everything(desk, SCREEN_READER)
    for text in UNRELATED:
        assert ask(visitor(desk), text)["action"] == "escalated"
    ask(visitor(desk), "I want to talk to a person")  # not the bot not knowing

    listed = desk.api("GET", "/suggestions", "admin")
    assert listed.status_code == 200, listed.text
    ours = {message_id(desk, t) for t in SCREEN_READER}
    found = suggestion_with(listed.json(), ours)
    assert all_ids(desk, found["id"]) == ours  # one cluster, all twelve, nothing else
    assert found["count"] == 12 and found["status"] == "open"
    assert "screen" in found["label"] and len(found["representatives"]) == 5
    assert found["accounts_affected"] == 0  # anonymous visitors

    body = {"intent": "screen_reader_support", "answer": ANSWER}
    accepted = desk.api("POST", f"/suggestions/{found['id']}/accept", "admin", json=body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "training"
    again = desk.api("POST", f"/suggestions/{found['id']}/accept", "admin", json=body)
    assert again.status_code == 409, again.text

    model = wait_for_retrain(desk)
    assert model["retrain"]["error"] is None and model["retrain"]["suggestion_id"] == found["id"]
    lesson = model["lessons"][0]
    assert lesson["intent"] == "screen_reader_support" and lesson["examples"] == 12
    assert lesson["before"]["precision"] is not None and lesson["after"]["coverage"] is not None
    assert (
        desk.api("POST", f"/suggestions/{found['id']}/accept", "admin", json=body).status_code
        == 409
    )

    reply = ask(visitor(desk), "will a screen reader work with your app?")
    assert reply["action"] == "answered", reply
    history = visitor_history_text(desk, reply)
    assert "JAWS, NVDA and VoiceOver" in history


def visitor_history_text(d: Desk, reply: dict[str, Any]) -> str:
    """What the bot sent in the conversation of the message ``reply`` answered."""
    with Session(d.engine) as s:
        asked = s.get(Message, reply["message_id"])
        assert asked is not None
        texts = s.exec(
            select(Message.text)
            .where(Message.conversation_id == asked.conversation_id)
            .where(Message.direction == "outbound")
        ).all()
    return "\n".join(texts)


def test_a_model_that_fails_the_gate_is_not_served_and_the_faq_is_restored(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> None:
    for d in _app(database_url, model_path, fake_bot_api, tmp_path, gate_min_precision=1.0):
        ask_everything(d, SCREEN_READER[:6], one_visitor_for=1)
        faq = Path(d.services.settings.faq_path) / "intents.yaml"
        before = faq.read_bytes()
        trained_at = d.services.models.classifier().metadata_["trained_at"]
        found = suggestion_with(
            d.api("GET", "/suggestions", "admin").json(),
            {message_id(d, t) for t in SCREEN_READER[:6]},
        )
        body = {"intent": "screen_reader_support", "answer": ANSWER}
        assert (
            d.api("POST", f"/suggestions/{found['id']}/accept", "admin", json=body).status_code
            == 202
        )
        model = wait_for_retrain(d)
        assert "below the target 100.0%" in model["retrain"]["error"]
        assert faq.read_bytes() == before
        assert d.services.models.classifier().metadata_["trained_at"] == trained_at
        assert "screen_reader_support" not in d.services.models.config().intents
        after = d.api("GET", f"/suggestions/{found['id']}", "admin").json()
        assert after["status"] == "open" and "below the target" in after["error"]
        assert model["lessons"] == []


# --------------------------------------------------------------------- the other paths
def _one_suggestion(d: Desk) -> dict[str, Any]:
    ask_everything(d, SCREEN_READER[:5], one_visitor_for=1)
    listed = d.api("GET", "/suggestions", "admin").json()
    return suggestion_with(listed, {message_id(d, t) for t in SCREEN_READER[:5]})


def test_a_dismissed_suggestion_never_comes_back(desk: Desk) -> None:
    found = _one_suggestion(desk)
    dismissed = desk.api("POST", f"/suggestions/{found['id']}/dismiss", "admin")
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    ask(visitor(desk), "screen reader support, do you have it?")
    listed = desk.api("GET", "/suggestions", "admin").json()
    dismissed_ids = all_ids(desk, found["id"])
    assert not any(dismissed_ids & all_ids(desk, s["id"]) for s in listed)
    assert desk.api("POST", f"/suggestions/{found['id']}/dismiss", "admin").status_code == 409


@pytest.mark.parametrize("who", ["agent", "csm"])
def test_only_admins_see_and_decide_suggestions_and_the_model(desk: Desk, who: str) -> None:
    body = {"intent": "screen_reader_support", "answer": ANSWER}
    assert desk.api("GET", "/suggestions", who).status_code == 403
    assert desk.api("GET", "/model", who).status_code == 403
    assert desk.api("GET", "/corrections", who).status_code == 403
    assert desk.api("POST", "/suggestions/1/accept", who, json=body).status_code == 403
    assert desk.api("POST", "/suggestions/1/dismiss", who).status_code == 403
    assert desk.api("GET", "/suggestions", None).status_code == 401


def test_accept_refuses_invalid_lessons_with_422_naming_the_field(desk: Desk) -> None:
    found = _one_suggestion(desk)
    url = f"/suggestions/{found['id']}/accept"
    cases = [
        ({"intent": "Screen Reader", "answer": ANSWER}, "intent"),
        ({"intent": "screen_reader_support"}, "answer"),
        ({"intent": "screen_reader_support", "answer": "{{ nope }}"}, "answer"),
        (
            {"intent": "screen_reader_support", "answer": ANSWER, "category": "strategic"},
            "category",
        ),
        ({"intent": "screen_reader_support", "answer": ANSWER, "examples": []}, "examples"),
    ]
    for body, field in cases:
        response = desk.api("POST", url, "admin", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text, (body, response.text)
    assert desk.api("GET", f"/suggestions/{found['id']}", "admin").json()["status"] == "open"
    assert (
        desk.api(
            "POST", "/suggestions/999/accept", "admin", json=cases[0][0] | {"intent": "abc"}
        ).status_code
        == 404
    )


def test_strategic_questions_and_vip_escalations_of_answerable_faqs_are_not_collected(
    desk: Desk,
) -> None:
    policy = Path(desk.services.settings.policy_path)  # a VIP's plain FAQ goes to a person
    policy.write_text(
        policy.read_text().replace("plain_faq: answer_with_offer", "plain_faq: escalate")
    )
    desk.services.models.load()
    strategic = "my lawyer wants to know if screen readers work with your app"
    assert ask(visitor(desk), strategic)["action"] == "escalated"
    vip = "where can i download my invoice"
    desk.post(tg_text_update(VIP_CHAT, vip))
    asked = "does your tool work with screen readers at all"
    assert ask(visitor(desk), asked)["action"] == "escalated"
    with Session(desk.engine) as s:
        vip_reasons = s.exec(select(Handoff.reasons)).all()
        texts = {a.text for a in suggestions.collect(s)}
    assert any(r[0] == "vip_account" and not set(r) & suggestions.NOT_KNOWING for r in vip_reasons)
    assert asked in texts and strategic not in texts and vip not in texts


def test_a_did_you_mean_still_waiting_for_a_tap_counts_as_the_bot_not_knowing(
    desk: Desk,
) -> None:
    """Until it expires into an ``ambiguous`` handoff, a clarification is still the bot not
    knowing: the message it asked about is collected."""
    waiting, tapped = "is the thing compatible with my thing", "the other thing, is it ok"
    for text in (waiting, tapped):
        ask(visitor(desk), text)
    with Session(desk.engine) as s:
        for text, answered in ((waiting, None), (tapped, utcnow())):
            source = s.exec(select(Message).where(Message.text == text)).one()
            s.add(
                Prompt(
                    conversation_id=source.conversation_id,
                    message_id=source.id or 0,
                    kind=CLARIFY,
                    options=["clarify:invoice_copy", "human:clarify"],
                    details={"source_message_id": source.id},
                    answered_at=answered,
                    outcome="chosen" if answered else None,
                )
            )
        s.commit()
        ids = suggestions.eligible_message_ids(s, utcnow(), suggestions.WINDOW_DAYS)
    assert message_id(desk, waiting) in ids


def test_erasing_a_customer_removes_their_words_from_suggestions(desk: Desk) -> None:
    found = _one_suggestion(desk)
    erased_text = SCREEN_READER[0]
    erased = message_id(desk, erased_text)
    assert erased in all_ids(desk, found["id"])
    with Session(desk.engine) as s:
        conversation = s.get(Conversation, s.get(Message, erased).conversation_id)  # type: ignore[union-attr]
        contact = s.get(Contact, conversation.contact_id)  # type: ignore[union-attr]
        privacy.erase_contact(s, contact.id)  # type: ignore[union-attr]
        s.commit()
    shown = desk.api("GET", f"/suggestions/{found['id']}", "admin").json()
    assert erased_text not in str(shown)
    assert erased not in {q["message_id"] for q in shown["representatives"]}
    listed = desk.api("GET", "/suggestions", "admin").json()
    assert erased_text not in str(listed)


def test_corrections_are_reviewed_then_approved_ones_are_learnt(desk: Desk) -> None:
    text = "my invoices page shows an error when I open it"
    ask(visitor(desk), text)
    wrong = "please stop the monthly email digest"
    ask(visitor(desk), wrong)
    with Session(desk.engine) as s:
        agent = Principal(desk.ids["agent"], "agent")
        known = desk.services.models.config().intents
        first = corrections.create(s, agent, message_id(desk, text), "bug_report", known)
        second = corrections.create(s, agent, message_id(desk, wrong), "invoice_request", known)
        s.commit()
        ids = first.id, second.id
    pending = desk.api("GET", "/corrections", "admin").json()
    assert [c["id"] for c in pending] == list(ids) and pending[0]["text"] == text
    rejected = desk.api("POST", f"/corrections/{ids[1]}/reject", "admin")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    approved = desk.api("POST", f"/corrections/{ids[0]}/approve", "admin")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    model = wait_for_retrain(desk)
    assert model["retrain"]["error"] is None and model["retrain"]["what"] == f"correction {ids[0]}"
    faq = (Path(desk.services.settings.faq_path) / "intents.yaml").read_text()
    assert f"      - {text}\n" in faq and wrong not in faq
    assert desk.api("GET", "/corrections", "admin").json() == []
    assert desk.api("POST", f"/corrections/{ids[0]}/reject", "admin").status_code == 409


def test_the_dashboard_shows_the_weekly_share_of_handoffs_the_bot_did_not_know(
    desk: Desk,
) -> None:
    ask(visitor(desk), SCREEN_READER[0])
    ask(visitor(desk), "I want to talk to a person")
    with Session(desk.engine) as s:
        weeks = metrics.not_knowing_weekly(s, Principal(desk.ids["admin"], "admin"), date.today())
    assert len(weeks) == 8 and weeks[-1].handoffs == 2 and weeks[-1].not_knowing == 1
    assert weeks[-1].share == 0.5 and weeks[0].share is None
