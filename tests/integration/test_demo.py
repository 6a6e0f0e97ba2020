"""`triagebot demo`: a month of past conversations for the dashboard, loaded once, beside the
demo accounts' own health stories (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlmodel import Session, func, select

from bot.demo import load_demo
from handoff import metrics
from handoff.access import Principal
from handoff.db import build_engine
from handoff.models import Account, Conversation, CsAlert, User
from tests.conftest import make_settings


def _dashboard(database_url: str) -> metrics.Dashboard:
    engine = build_engine(database_url)
    with Session(engine) as s:
        admin = s.exec(select(User).where(User.email == "admin@demo.test")).one()
        today = date.today()
        board = metrics.dashboard(s, Principal.of(admin), today - timedelta(days=29), today)
    engine.dispose()
    return board


def test_the_demo_dashboard_has_a_month_of_history(database_url: str, model_path: Path) -> None:
    load_demo(make_settings(database_url, model_path))
    board = _dashboard(database_url)
    days_with_escalations = [d for d, n in board.escalations_per_day if n]
    assert len(days_with_escalations) >= 15
    assert board.total.conversations >= 100
    assert sum(board.csat_scores.values()) >= 10
    assert board.intent_feedback  # "didn't help" votes to show


def test_loading_the_demo_twice_adds_the_month_once(database_url: str, model_path: Path) -> None:
    settings = make_settings(database_url, model_path)
    load_demo(settings)
    engine = build_engine(database_url)
    with Session(engine) as s:
        before = s.exec(select(func.count()).select_from(Conversation)).one()
    assert "past conversations" not in load_demo(settings)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Conversation)).one() == before
        # the demo accounts keep their stories: Globex's usage drop, Initech red, Hooli green
        status = {a.external_id: a.health_status for a in s.exec(select(Account)).all()}
        assert status == {"ACME-001": "yellow", "ACME-002": "red", "ACME-003": "green"}
        drops = s.exec(select(CsAlert).where(CsAlert.kind == "usage_drop")).all()
        assert [a.title for a in drops] == [
            "Globex Corporation: active users -42% in the last 7 days vs the 21 before"
        ]
    engine.dispose()
