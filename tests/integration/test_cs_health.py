"""Customer Success intelligence, from realistic account histories (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from handoff import alerts, jobs, signals
from handoff.db import build_engine
from handoff.errors import PermissionDenied
from handoff.health import HealthConfig
from handoff.models import (
    Account,
    ChannelIdentity,
    Contact,
    Conversation,
    CsAlert,
    Handoff,
    HealthSnapshot,
    JobRun,
    Message,
    NpsResponse,
    OutboxEntry,
    UsageDaily,
    User,
    utcnow,
)
from tests.integration.conftest import Service

TODAY = date(2026, 11, 25)
CFG = HealthConfig()
DROP_40 = "active users -40% in the last 7 days vs the 21 before"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = build_engine(database_url)
    yield eng
    eng.dispose()


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def options(today: date = TODAY) -> signals.SignalOptions:
    return signals.SignalOptions(CFG, today)


def make_csm(session: Session, email: str, chat: str) -> User:
    user = User(email=email, name=email.split("@")[0], role="csm", telegram_chat_id=chat)
    session.add(user)
    session.flush()
    return user


def make_account(session: Session, external_id: str, csm: User | None, **fields: object) -> Account:
    account = Account(
        external_id=external_id,
        name=f"{external_id} Inc",
        csm_id=csm.id if csm else None,
        **fields,  # type: ignore[arg-type]
    )
    session.add(account)
    session.flush()
    return account


def add_usage(
    session: Session,
    account: Account,
    *,
    prior: int,
    recent: int,
    seats: int = 60,
    days: int = 42,
    until: date = TODAY,
    logins_per_user: int = 2,
) -> None:
    """``days`` of usage ending ``until``: ``prior`` active users, then ``recent`` (TODAY's
    recent trend window, i.e. from TODAY - 6 on)."""
    for back in range(days):
        day = until - timedelta(days=back)
        users = recent if day >= TODAY - timedelta(days=6) else prior
        session.add(
            UsageDaily(
                account_id=account.id or 0,
                day=day,
                active_users=users,
                seats=seats,
                logins=users * logins_per_user,
                key_feature_events=users * 3,
            )
        )
    session.flush()


def add_message(
    session: Session, account: Account, text: str, intent: str | None, when: datetime
) -> Message:
    contact = Contact(account_id=account.id, name="Customer", email=f"c{account.id}@x.test")
    session.add(contact)
    session.flush()
    identity = ChannelIdentity(
        contact_id=contact.id or 0, channel="webchat", external_id=f"v{contact.id}"
    )
    session.add(identity)
    session.flush()
    conversation = Conversation(
        contact_id=contact.id or 0, identity_id=identity.id or 0, channel="webchat", created_at=when
    )
    session.add(conversation)
    session.flush()
    message = Message(
        conversation_id=conversation.id or 0,
        channel="webchat",
        external_id=f"m{conversation.id}",
        direction="inbound",
        author="customer",
        text=text,
        intent=intent,
        confidence=0.9,
        created_at=when,
    )
    session.add(message)
    session.flush()
    return message


def add_escalation(session: Session, account: Account, when: datetime) -> Handoff:
    message = add_message(session, account, "this is unacceptable, still broken", None, when)
    handoff = Handoff(
        conversation_id=message.conversation_id,
        account_id=account.id,
        reasons=["negative_sentiment"],
        created_at=when,
        waiting_since=when,
    )
    session.add(handoff)
    session.flush()
    return handoff


def outbox_to(session: Session, chat: str) -> list[OutboxEntry]:
    return list(
        session.exec(
            select(OutboxEntry).where(OutboxEntry.target == chat).order_by(col(OutboxEntry.id))
        ).all()
    )


def alerts_of(session: Session, account: Account, kind: str | None = None) -> list[CsAlert]:
    stmt = select(CsAlert).where(CsAlert.account_id == account.id)
    if kind:
        stmt = stmt.where(CsAlert.kind == kind)
    return list(session.exec(stmt).all())


# ------------------------------------------------------------------------------ scenarios
def test_usage_drop_of_40_percent_alerts_its_csm_once_in_words_before_any_ticket(
    engine: Engine,
) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7001")
        account = make_account(s, "DROP-1", csm, tier="smb", arr=12000)
        add_usage(s, account, prior=50, recent=30, until=TODAY - timedelta(days=1))
        s.commit()
        # the day's usage arrives: ingestion recomputes health and alerts
        signals.record_usage(
            s, "DROP-1", TODAY, signals.UsageIn(active_users=30, seats=60, logins=60), options()
        )
        s.commit()
        drops = alerts_of(s, account, "usage_drop")
        assert len(drops) == 1
        assert DROP_40 in drops[0].title
        sent = outbox_to(s, "7001")
        assert len(sent) == 1 and DROP_40 in sent[0].payload["text"]
        assert sent[0].kind == "csm_alert"
        assert s.exec(select(func.count()).select_from(Handoff)).one() == 0  # no ticket
        s.refresh(account)
        assert DROP_40 in account.attributes["health_factors"]
        # the same day sent again, then the daily job: no second alert
        signals.record_usage(
            s, "DROP-1", TODAY, signals.UsageIn(active_users=30, seats=60, logins=60), options()
        )
        s.commit()
    jobs.run_job(engine, "daily", TODAY.isoformat(), health=CFG, today=TODAY)
    with Session(engine) as s:
        assert len(alerts_of(s, account, "usage_drop")) == 1
        assert len(outbox_to(s, "7001")) == 1


def test_healthy_account_with_one_password_reset_does_not_alert(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7002")
        account = make_account(s, "OK-1", csm, tier="enterprise", arr=90000)
        account.renewal_date = TODAY + timedelta(days=200)
        add_usage(s, account, prior=48, recent=50, logins_per_user=3)
        add_message(s, account, "how do I reset my password?", "password_reset", at(TODAY))
        s.commit()
    outcome = jobs.run_job(engine, "daily", TODAY.isoformat(), health=CFG, today=TODAY)
    assert outcome.ran
    with Session(engine) as s:
        account = s.exec(select(Account).where(Account.external_id == "OK-1")).one()
        assert account.health_status == "green"
        assert alerts_of(s, account) == []
        assert outbox_to(s, "7002") == []
        assert s.exec(select(HealthSnapshot).where(HealthSnapshot.account_id == account.id)).all()


def test_three_escalations_in_a_week_turn_health_red_and_say_why(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "omar@cs.test", "7003")
        account = make_account(s, "ESC-1", csm, tier="mid-market", arr=30000)
        account.health_score, account.health_status = 80, "green"
        add_usage(s, account, prior=40, recent=40)
        for back in (1, 3, 6):
            add_escalation(s, account, at(TODAY - timedelta(days=back)))
        s.commit()
        refresh = signals.refresh_account(s, account, options())
        s.commit()
        assert refresh.change.result.status == "red"
        assert account.health_status == "red" and account.health_score is not None
        assert account.health_score < CFG.bands.yellow_min
        assert "3 escalations in 14 days" in account.attributes["health_factors"]
        red = alerts_of(s, account, "turned_red")
        assert len(red) == 1 and "3 escalations in 14 days" in red[0].body
        assert [a.kind for a in refresh.alerts] == ["turned_red"]


def test_digest_reaches_the_right_csm_only(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        carla = make_csm(s, "carla@cs.test", "8001")
        omar = make_csm(s, "omar@cs.test", "8002")
        busy = make_account(s, "GLOBEX", carla)
        quiet = make_account(s, "HOOLI", omar)
        add_escalation(s, busy, at(TODAY - timedelta(days=2)))
        for back in (1, 2, 3):
            add_message(s, busy, "export to csv fails", "export_data", at(TODAY - timedelta(back)))
        s.commit()
    week = jobs.period_of("digest", TODAY)
    assert jobs.run_job(engine, "digest", week, health=CFG, today=TODAY).ran
    with Session(engine) as s:
        to_carla = outbox_to(s, "8001")
        to_omar = outbox_to(s, "8002")
        assert len(to_carla) == 1 and len(to_omar) == 1
        carla_text, omar_text = to_carla[0].payload["text"], to_omar[0].payload["text"]
        assert "GLOBEX Inc" in carla_text and "export_data x3" in carla_text
        assert "GLOBEX" not in omar_text
        assert "HOOLI" not in carla_text
        digests = s.exec(select(CsAlert).where(CsAlert.kind == "digest")).all()
        assert {d.csm_id for d in digests} == {carla.id, omar.id}
        assert quiet.id is not None
    # the same week again: skipped, nothing more sent
    assert not jobs.run_job(engine, "digest", week, health=CFG, today=TODAY).ran


def test_a_lasting_usage_drop_alerts_once_per_episode_not_once_a_week(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7005")
        account = make_account(s, "DROP-2", csm)
        add_usage(s, account, prior=50, recent=25, days=50)
        s.commit()
        first = signals.refresh_account(s, account, options())
        s.commit()
        assert [a.kind for a in first.alerts] == ["usage_drop"]
        # eight days later, past the cooldown, usage still at half: the same episode
        old = alerts_of(s, account, "usage_drop")[0]
        old.created_at = old.created_at - timedelta(days=8)
        s.add(old)
        for back in range(1, 9):
            s.add(
                UsageDaily(
                    account_id=account.id or 0,
                    day=TODAY + timedelta(days=back),
                    active_users=25,
                    seats=60,
                    logins=50,
                )
            )
        s.commit()
        later = signals.refresh_account(s, account, options(TODAY + timedelta(days=8)))
        s.commit()
        assert later.alerts == []
        assert len(outbox_to(s, "7005")) == 1


def test_a_new_drop_after_usage_recovered_alerts_again(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7006")
        account = make_account(s, "DROP-3", csm)
        add_usage(s, account, prior=50, recent=25, days=50)
        s.commit()
        assert signals.refresh_account(s, account, options()).alerts
        old = alerts_of(s, account, "usage_drop")[0]
        old.created_at = old.created_at - timedelta(days=30)
        s.add(old)
        s.commit()
        # usage recovers (the episode closes), then falls again
        replay = [(d, 50) for d in range(1, 29)] + [(d, 20) for d in range(29, 36)]
        for back, users in replay:
            day = TODAY + timedelta(days=back)
            signals.record_usage(
                s, "DROP-3", day, signals.UsageIn(active_users=users, seats=60), options(day)
            )
            s.commit()
        assert len(alerts_of(s, account, "usage_drop")) == 2


def test_same_job_run_by_two_threads_at_once_runs_once(engine: Engine) -> None:
    with Session(engine) as s:
        make_account(s, "ANY-1", None)
        s.commit()
    barrier = threading.Barrier(2)
    outcomes: list[jobs.JobOutcome] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(jobs.run_job(engine, "daily", TODAY.isoformat(), today=TODAY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(o.ran for o in outcomes) == [False, True]
    with Session(engine) as s:
        runs = s.exec(select(JobRun)).all()
        assert len(runs) == 1 and runs[0].finished_at is not None
        assert s.exec(select(func.count()).select_from(HealthSnapshot)).one() == 1


def test_usage_csv_import_rejects_bad_rows_with_reasons_and_imports_nothing(
    engine: Engine,
) -> None:
    with Session(engine) as s:
        make_account(s, "ACME-1", None)
        s.commit()
    text = (
        "external_id,date,active_users,seats,logins,key_feature_events\n"
        "ACME-1,2026-11-20,10,20,30,5\n"
        "NOPE-9,2026-11-20,10,20,30,5\n"
        "ACME-1,2026-11-21,-3,20,30,5\n"
        "ACME-1,2026-11-20,11,20,30,5\n"
        "ACME-1,2026-13-01,10,20,30,5\n"
        "ACME-1,2026-12-30,10,20,30,5\n"
    )
    with Session(engine) as s:
        report = signals.import_usage_csv(s, text, options())
        s.rollback()
    assert not report.ok
    reasons = dict(report.rejected)
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert "no account with external_id NOPE-9" in reasons[3]
    assert "active_users" in reasons[4]
    assert "repeats line 2" in reasons[5]
    assert "date" in reasons[6]
    assert "in the future" in reasons[7]
    assert "nothing imported" in report.format()
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(UsageDaily)).one() == 0
    good = "external_id,date,active_users,seats\nACME-1,2026-11-20,10,20\nACME-1,2026-11-21,9,20\n"
    with Session(engine) as s:
        report = signals.import_usage_csv(s, good, options())
        s.commit()
        assert report.ok and report.created == 2
        again = signals.import_usage_csv(s, good, options())
        s.commit()
        assert again.updated == 2 and again.created == 0
        assert s.exec(select(func.count()).select_from(UsageDaily)).one() == 2


def test_nps_answer_is_idempotent_and_lowers_health(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        make_account(s, "NPS-1", None)
        s.commit()
        nps = signals.NpsIn(score=2, date=TODAY, comment="slow", respondent="a@x.test")
        _row, refresh = signals.record_nps(s, "NPS-1", nps, options())
        signals.record_nps(s, "NPS-1", nps, options())
        s.commit()
        assert any("NPS 2.0/10 (detractor" in r for r in refresh.change.result.reasons())
        assert s.exec(select(func.count()).select_from(NpsResponse)).one() == 1


def test_a_csm_may_acknowledge_only_their_own_alerts(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        carla = make_csm(s, "carla@cs.test", "7006")
        omar = make_csm(s, "omar@cs.test", "7007")
        account = make_account(s, "DROP-3", carla)
        add_usage(s, account, prior=50, recent=20)
        s.commit()
        alert = signals.refresh_account(s, account, options()).alerts[0]
        s.commit()
        with pytest.raises(PermissionDenied):
            alerts.acknowledge_alert(s, omar.id or 0, alert.id or 0)
        done = alerts.acknowledge_alert(s, carla.id or 0, alert.id or 0)
        s.commit()
        assert done.acknowledged_by == carla.id and done.acknowledged_at is not None


# ------------------------------------------------------------------------------ HTTP API
def test_signals_api_stores_usage_for_admins_only_and_imports_csv_all_or_nothing(
    service: Service,
) -> None:
    from handoff import users

    engine = service.services.engine
    with Session(engine, expire_on_commit=False) as s:
        admin = User(email="admin@x.test", name="Admin", role="admin")
        csm = make_csm(s, "carla@cs.test", "9001")
        s.add(admin)
        make_account(s, "API-1", csm)
        s.flush()
        admin_token = users.issue_api_token(s, admin)
        csm_token = users.issue_api_token(s, csm)
        s.commit()
    client = service.client
    today = datetime.now(UTC).date().isoformat()
    body = {"active_users": 12, "seats": 20, "logins": 30, "key_feature_events": 4}
    denied = client.put(
        f"/api/v1/accounts/API-1/usage/{today}",
        json=body,
        headers={"Authorization": f"Bearer {csm_token}"},
    )
    assert denied.status_code == 403
    admin_headers = {"Authorization": f"Bearer {admin_token}"}
    ok = client.put(f"/api/v1/accounts/API-1/usage/{today}", json=body, headers=admin_headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["health"]["status"] in ("green", "yellow", "red")
    again = client.put(f"/api/v1/accounts/API-1/usage/{today}", json=body, headers=admin_headers)
    assert again.status_code == 200
    missing = client.put(f"/api/v1/accounts/NOPE/usage/{today}", json=body, headers=admin_headers)
    assert missing.status_code == 404
    nps = client.post(
        "/api/v1/accounts/API-1/nps",
        json={"score": 4, "date": today, "comment": "meh"},
        headers=admin_headers,
    )
    assert nps.status_code == 201, nps.text
    bad_csv = "external_id,date,active_users,seats\nAPI-1,2026-01-01,5,20\nNOPE,2026-01-01,5,20\n"
    refused = client.post(
        "/api/v1/usage:import",
        content=bad_csv.encode(),
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert refused.status_code == 422
    assert refused.json()["rejected"] == [{"line": 3, "reason": "no account with external_id NOPE"}]
    good_csv = "external_id,date,active_users,seats\nAPI-1,2026-01-01,5,20\n"
    imported = client.post(
        "/api/v1/usage:import",
        content=good_csv.encode(),
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200 and imported.json()["created"] == 1
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(UsageDaily)).one() == 2


def test_a_negative_customer_message_escalates_with_negative_sentiment(
    service: Service,
) -> None:
    from tests.factories import tg_text_update

    response = service.post_update(
        tg_text_update(4242, "This is unacceptable, the export is broken AGAIN and nobody answers")
    )
    assert response.status_code == 200
    with Session(service.services.engine) as s:
        message = s.exec(select(Message).where(Message.direction == "inbound")).one()
        assert (message.raw or {})["sentiment"]["negativity"] >= 0.7
        handoff = s.exec(select(Handoff)).one()
        assert "negative_sentiment" in handoff.reasons


def test_a_run_whose_process_died_is_taken_over_once_it_is_stale(engine: Engine) -> None:
    with Session(engine) as s:
        make_account(s, "ANY-2", None)
        # what a SIGKILLed instance leaves: a claimed run that never finished
        s.add(JobRun(job="daily", period="2026-01-01", started_at=utcnow() - timedelta(hours=2)))
        s.add(JobRun(job="daily", period="2026-01-02", started_at=utcnow()))
        s.commit()
    stale = jobs.run_job(engine, "daily", "2026-01-01", today=TODAY)
    running = jobs.run_job(engine, "daily", "2026-01-02", today=TODAY)
    again = jobs.run_job(engine, "daily", "2026-01-01", today=TODAY)
    assert (stale.ran, running.ran, again.ran) == (True, False, False)
    assert stale.result.startswith("1 account(s) scored")
    with Session(engine) as s:
        runs = {r.period: r for r in s.exec(select(JobRun)).all()}
        assert runs["2026-01-01"].finished_at is not None
        assert runs["2026-01-02"].finished_at is None  # still someone else's, not yet stale


# ------------------------------------------------------- usage on incomplete data (issue 14)
def send_day_by_day(s: Session, external_id: str, first: date, users: list[int]) -> None:
    """Usage sent one day at a time, each on its own day, as a nightly sync would."""
    for n, count in enumerate(users):
        day = first + timedelta(days=n)
        data = signals.UsageIn(active_users=count, seats=120, logins=count * 2)
        signals.record_usage(s, external_id, day, data, options(day))
        s.commit()


def test_usage_halving_on_day_22_alerts_once_about_minus_50_within_a_week(engine: Engine) -> None:
    first = TODAY - timedelta(days=60)
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7101")
        account = make_account(s, "STEP-1", csm, tier="smb")
        s.commit()
        send_day_by_day(s, "STEP-1", first, [100] * 21 + [50] * 21)
        drops = alerts_of(s, account, "usage_drop")
        assert len(drops) == 1, [(a.title, a.created_at) for a in drops]
        assert "active users -50%" in drops[0].title
        assert drops[0].details["period"] <= (first + timedelta(days=28)).isoformat()
        assert "Based on: usage data on 7 of the last 7 days" in drops[0].body
        # nothing else fired on the days before enough data existed
        assert [a.kind for a in alerts_of(s, account)] == ["usage_drop"]


def test_days_without_usage_data_are_unknown_not_zero(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        account = make_account(s, "GAP-1", None)
        # a month of 90 active users of 120 seats, then the sync stops for 9 days
        add_usage(s, account, prior=90, recent=90, days=30, until=TODAY - timedelta(days=9))
        s.commit()
        refresh = signals.refresh_account(s, account, options())
        s.commit()
        factors = account.attributes["health_factors"]
        assert not any("seat utilisation 0%" in f for f in factors), factors
        assert refresh.change.result.factor("seat_utilisation") is None
        assert refresh.change.result.factor("usage_trend") is None
        basis = account.attributes["health_basis"]
        assert f"latest usage data {(TODAY - timedelta(days=9)).isoformat()}" in basis


def test_a_window_mostly_without_data_raises_no_usage_alert(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7102")
        account = make_account(s, "SPARSE-1", csm)
        add_usage(s, account, prior=100, recent=100, days=42, until=TODAY - timedelta(days=7))
        # of the last 7 days only two arrived, both low
        for back in (0, 3):
            s.add(
                UsageDaily(
                    account_id=account.id or 0,
                    day=TODAY - timedelta(days=back),
                    active_users=20,
                    seats=120,
                    logins=40,
                )
            )
        s.commit()
        refresh = signals.refresh_account(s, account, options())
        s.commit()
        assert refresh.alerts == []
        assert any(
            "usage data on 2 of the last 7 days" in b for b in account.attributes["health_basis"]
        )


def test_a_sync_late_by_a_day_keeps_the_usage_factors(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        account = make_account(s, "LATE-1", None)
        add_usage(s, account, prior=90, recent=90, seats=120, until=TODAY - timedelta(days=1))
        s.commit()
        result = signals.refresh_account(s, account, options()).change.result
        s.commit()
        seat = result.factor("seat_utilisation")
        assert seat is not None and seat.text == "seat utilisation 75% (90 of 120)"
        assert result.factor("usage_trend") is not None


def test_the_accounts_api_refuses_an_unknown_tier_with_422(service: Service) -> None:
    from handoff import users

    with Session(service.services.engine, expire_on_commit=False) as s:
        admin = User(email="admin@x.test", name="Admin", role="admin")
        s.add(admin)
        s.flush()
        token = users.issue_api_token(s, admin)
        s.commit()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"name": "Galactic", "tier": "galactic"}
    r = service.client.put("/api/v1/accounts/GAL-1", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert "galactic" in r.text and "enterprise" in r.text
    ok = service.client.put("/api/v1/accounts/GAL-1", json={**body, "tier": "SMB"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["tier"] == "smb"


def test_a_vip_whose_usage_sync_stopped_is_not_called_quiet(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        csm = make_csm(s, "carla@cs.test", "7103")
        account = make_account(s, "VIPSYNC-1", csm, tier="enterprise", arr=200000)
        account.renewal_date = TODAY + timedelta(days=30)
        add_usage(s, account, prior=40, recent=40, days=30, until=TODAY - timedelta(days=20))
        s.commit()
        refresh = signals.refresh_account(s, account, options())
        s.commit()
        assert "vip_quiet" not in [a.kind for a in refresh.alerts]
        stopped = (TODAY - timedelta(days=20)).isoformat()
        assert f"latest usage data {stopped}" in account.attributes["health_basis"]
