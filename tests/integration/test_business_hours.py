"""Issue 16 item 1: business hours and holidays (the SLA clock, the customer's "we're back",
CSM alerts held until the next opening, the admin and API edits refusing bad input)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from bot.settings import ROOT
from handoff.hours import back_at, next_open, sla_due_at, validate_hours
from handoff.models import Account, CsAlert, Handoff, OutboxEntry
from tests.factories import tg_text_update
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.desk_support import CSM_CHAT, PLAIN_CHAT, VIP_CHAT, Desk, seeded_desk


def closed_now() -> dict[str, Any]:
    """Open around the clock every day, except today and tomorrow (holidays): closed now."""
    today = datetime.now(UTC).date()
    return {
        "timezone": "UTC",
        "weekly": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "holidays": [{"start": today.isoformat(), "end": (today + timedelta(days=1)).isoformat()}],
        "sla_clock": {1: "always"},
    }


@pytest.fixture
def closed(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Desk]:
    path = tmp_path / "hours.yaml"
    path.write_text(yaml.safe_dump(closed_now()), encoding="utf-8")
    yield from seeded_desk(database_url, model_path, fake_bot_api, hours_path=path)


@pytest.fixture
def desk(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Desk]:
    path = tmp_path / "hours.yaml"
    shutil.copy(ROOT / "data" / "hours.yaml", path)
    yield from seeded_desk(database_url, model_path, fake_bot_api, hours_path=path)


def _last_handoff(d: Desk) -> Handoff:
    with Session(d.engine) as s:
        found = s.exec(select(Handoff).order_by(Handoff.id.desc())).first()  # type: ignore[union-attr]
    assert found is not None
    return found


def test_out_of_hours_the_customer_is_told_when_a_person_is_back(closed: Desk) -> None:
    cfg = validate_hours(closed_now())
    before = datetime.now(UTC)
    closed.post(tg_text_update(PLAIN_CHAT, "I want to talk to a person"))  # P2
    back = back_at(before, cfg)
    assert back is not None and back.endswith(" 0:00 UTC")
    closed.fake.wait_for(lambda f: any(f"We're back {back}." in t for t in f.texts(PLAIN_CHAT)))
    handoff = _last_handoff(closed)
    assert handoff.priority == 2
    assert handoff.sla_due_at == next_open(before, cfg) + timedelta(minutes=60)


def test_p1_keeps_its_247_clock_and_its_csm_alert_leaves_at_once(closed: Desk) -> None:
    before = datetime.now(UTC)
    closed.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))  # VIP: P1
    closed.fake.wait_for(lambda f: any("usually within 15 minutes" in t for t in f.texts(VIP_CHAT)))
    closed.fake.wait_for(lambda f: any("Globex" in t for t in f.texts(CSM_CHAT)))
    handoff = _last_handoff(closed)
    assert handoff.priority == 1 and handoff.sla_due_at is not None
    assert (
        before + timedelta(minutes=15)
        <= handoff.sla_due_at
        <= datetime.now(UTC) + timedelta(minutes=15)
    )


def test_a_non_p1_csm_alert_out_of_hours_waits_for_the_next_opening(closed: Desk) -> None:
    with Session(closed.engine) as s:
        hooli = s.exec(select(Account).where(Account.name == "Hooli")).one()
        hooli.health_status, hooli.health_score = "red", 20  # at risk: plain FAQs escalate (P2)
        s.add(hooli)
        s.commit()
    before = datetime.now(UTC)
    closed.post(tg_text_update(PLAIN_CHAT, "how do i reset my password"))
    handoff = _last_handoff(closed)
    assert handoff.priority == 2 and "at_risk_account" in handoff.reasons
    opening = next_open(before, validate_hours(closed_now()))
    with Session(closed.engine) as s:
        alert = s.exec(select(CsAlert).where(CsAlert.handoff_id == handoff.id)).one()
        entries = s.exec(select(OutboxEntry).where(OutboxEntry.kind == "csm_alert")).all()
    assert alert.details["held_until"] == opening.isoformat()
    assert [(e.channel, e.status, e.next_attempt_at) for e in entries] == [
        ("slack", "pending", opening)
    ]
    assert entries[0].ordering_key.endswith(":held")  # a later P1 alert is not queued behind it
    time.sleep(0.3)  # the worker polls every 50 ms: it would have sent a due entry by now
    assert closed.slack.texts() == []


def test_admins_replace_the_hours_by_api_and_bad_input_is_refused_naming_the_field(
    desk: Desk,
) -> None:
    path = Path(desk.services.settings.hours_path)
    original = path.read_bytes()
    bad = [
        ({"weekly": {"mon": ["22:00-06:00"]}}, "weekly.mon"),
        ({"weekly": {"tue": ["09:00-12:00", "11:00-14:00"]}}, "weekly.tue: ranges overlap"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        (
            {"holidays": [{"start": "2026-12-24", "end": "2026-12-26"}, {"start": "2026-12-25"}]},
            "holidays overlap",
        ),
    ]
    for body, named in bad:
        r = desk.api("PUT", "/hours", "admin", json=body)
        assert r.status_code == 422 and named in r.json()["detail"], r.text
    assert path.read_bytes() == original
    assert desk.api("PUT", "/hours", "agent", json={}).status_code == 403
    good = {
        "timezone": "Europe/Berlin",
        "weekly": {"mon": ["09:00-17:00"], "fri": ["09:00-16:00"]},
        "holidays": [{"start": "2026-12-24", "end": "2026-12-26", "name": "Christmas"}],
        "sla_always": [1],
    }
    r = desk.api("PUT", "/hours", "admin", json=good)
    assert r.status_code == 200, r.text
    assert r.json()["always_open"] is False and r.json()["weekly"]["fri"] == ["09:00-16:00"]
    text = path.read_text()
    assert text.startswith("# Business hours and holidays")  # the header comments are kept
    assert yaml.safe_load(text)["timezone"] == "Europe/Berlin"
    assert desk.services.models.config().hours.timezone == "Europe/Berlin"
    got = desk.api("GET", "/hours", "csm").json()
    assert got["holidays"] == [{"start": "2026-12-24", "end": "2026-12-26", "name": "Christmas"}]


def test_the_sla_of_a_business_hours_priority_counts_business_time(desk: Desk) -> None:
    """With hours set through the API, a P2 escalation's deadline is 60 business minutes."""
    always_open_soon = {
        "timezone": "UTC",
        "weekly": {d: ["00:00-01:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "sla_always": [1],
    }
    assert desk.api("PUT", "/hours", "admin", json=always_open_soon).status_code == 200
    before = datetime.now(UTC)
    desk.post(tg_text_update(PLAIN_CHAT, "I want to talk to a person"))
    handoff = _last_handoff(desk)
    cfg = desk.services.models.config().hours
    expected = sla_due_at(before, 60, 2, cfg)
    assert handoff.sla_due_at is not None
    assert abs((handoff.sla_due_at - expected).total_seconds()) < 60
    assert handoff.sla_due_at.astimezone(UTC).hour in (0, 1)  # inside the one open hour
