"""Issue 6 (rest): the console's dashboard figures and its admin page (users, FAQ answers,
escalation thresholds, model retraining). FAQ and policy edits go to copies in tmp_path."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.app import create_app
from bot.settings import ROOT
from bot.web import charts
from bot.web.sessions import COOKIE_NAME
from classifier import faq_data_hash
from handoff import context, escalation, metrics
from handoff.desk import Principal
from handoff.models import Account, Feedback, Handoff, Message, User
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import PASSWORD, PLAIN_CHAT, VIP_CHAT, Console, seed

ANON_CHAT = 6009
FAQ_FILE = "intents.yaml"
# The admin policy form with the VIP ARR threshold lowered to 2,000 (the rest as shipped).
VIP_ARR_2000 = {
    "vip_tiers": "enterprise, strategic",
    "vip_min_arr": "2000",
    "vip_qbr_within_days": "14",
    "vip_renewal_within_days": "60",
    "at_risk_max_health_score": "40",
    "min_confidence": "0.5",
}


@dataclass
class Admin:
    console: Console
    faq: Path
    policy: Path

    def post(self, path: str, **form: str) -> Any:
        token = self.console.csrf("/console/dashboard")
        return self.console.client.post(
            path, data={"csrf_token": token, **form}, follow_redirects=False
        )


def _copy_data(tmp_path: Path) -> tuple[Path, Path]:
    faq = tmp_path / "faq"
    shutil.copytree(ROOT / "data" / "faq", faq)
    policy = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "data" / "policy.yaml", policy)
    return faq, policy


def _start(
    database_url: str, model_path: Path, fake: FakeBotApi, tmp_path: Path
) -> Iterator[Admin]:
    faq, policy = _copy_data(tmp_path)
    settings = make_settings(
        database_url,
        model_path,
        telegram_api_base_url=fake.base_url,
        faq_path=faq,
        policy_path=policy,
    )
    with TestClient(create_app(settings)) as client:
        c = Console(client, fake, seed(client.app.state.services.engine))  # type: ignore[attr-defined]
        c.customer(VIP_CHAT, "/start vip-token-123")
        c.customer(PLAIN_CHAT, "/start plain-token-123")
        fake.wait_for(lambda f: f.texts(VIP_CHAT) and f.texts(PLAIN_CHAT))
        yield Admin(c, faq, policy)


@pytest.fixture
def admin(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, tmp_path: Path
) -> Iterator[Admin]:
    yield from _start(database_url, model_path, fake_bot_api, tmp_path)


# ----------------------------------------------------------------------------- dashboard
def _seed_activity(c: Console) -> dict[str, int]:
    """Three conversations (smb, enterprise, no account); the enterprise one escalated.

    Hooli (smb) and the anonymous chat get a password-reset answer; Globex (enterprise, VIP)
    gets an invoice answer, then asks for a person. The handoff is answered after 10 minutes
    and resolved after 1 hour. Feedback: CSAT 5 and 4 (Globex), 2 (Hooli), and 1 forty days
    ago (outside the default range); password reset: helpful (anonymous), didn't help (Hooli).
    """
    assert c.customer(PLAIN_CHAT, "i forgot my password").json()["action"] == "answered"
    assert c.customer(ANON_CHAT, "i forgot my password").json()["action"] == "answered"
    assert c.customer(VIP_CHAT, "where can i download my invoice").json()["action"] == "answered"
    handoff_id = c.escalate(VIP_CHAT, "I want to talk to a person")
    now = datetime.now(UTC)
    with Session(c.engine) as s:
        h = s.get(Handoff, handoff_id)
        assert h is not None
        h.created_at = now - timedelta(hours=2)
        h.first_response_at = h.created_at + timedelta(minutes=10)
        h.resolved_at = h.created_at + timedelta(hours=1)
        h.status = "resolved"
        s.add(h)
        accounts = {a.name: a.id for a in s.exec(select(Account)).all()}
        convs = {
            m.text: m.conversation_id
            for m in s.exec(select(Message).where(Message.direction == "inbound")).all()
        }
        globex, hooli = accounts["Globex"], accounts["Hooli"]
        vip_conv = convs["where can i download my invoice"]
        plain_conv = convs["/start plain-token-123"]
        anon_conv = next(conv for text, conv in convs.items() if conv not in (vip_conv, plain_conv))
        rows = [
            (vip_conv, globex, "csat", 5, None, now),
            (vip_conv, globex, "csat", 4, None, now),
            (plain_conv, hooli, "csat", 2, None, now),
            (plain_conv, hooli, "csat", 1, None, now - timedelta(days=40)),
            (anon_conv, None, "helpful", None, "password_reset", now),
            (plain_conv, hooli, "didnt_help", None, "password_reset", now),
        ]
        for conv, account, kind, score, intent, at in rows:
            s.add(
                Feedback(
                    conversation_id=conv,
                    account_id=account,
                    kind=kind,
                    score=score,
                    intent=intent,
                    created_at=at,
                )
            )
        s.commit()
    return {"handoff": handoff_id}


def _tier_row(page: str, tier: str) -> str:
    match = re.search(rf'<tr[^>]*data-tier="{re.escape(tier)}">(.*?)</tr>', page, re.S)
    assert match, f"no row for tier {tier}"
    return match.group(1)


def _field(row: str, name: str) -> str:
    match = re.search(rf'data-field="{name}">([^<]*)<', row)
    assert match, name
    return match.group(1).strip()


def test_dashboard_figures_for_admin_and_csm_scope(admin: Admin) -> None:
    c = admin.console
    _seed_activity(c)
    today = datetime.now(UTC).date()
    with Session(c.engine) as s:
        d = metrics.dashboard(
            s, Principal(c.ids["admin"], "admin"), today - timedelta(days=29), today
        )
        old = metrics.dashboard(
            s,
            Principal(c.ids["admin"], "admin"),
            today - timedelta(days=40),
            today - timedelta(days=40),
        )
        mine = metrics.dashboard(
            s, Principal(c.ids["csm"], "csm"), today - timedelta(days=29), today
        )
    # 3 conversations, the enterprise one escalated: 2/3 auto-resolved
    assert (d.total.conversations, d.total.auto_resolved) == (3, 2)
    assert d.total.deflection_rate == pytest.approx(2 / 3)
    tiers = {t.tier: t for t in d.tiers}
    assert [t.tier for t in d.tiers] == ["enterprise", "smb", "unknown"]
    assert tiers["enterprise"].deflection_rate == 0 and tiers["smb"].deflection_rate == 1
    assert tiers["enterprise"].escalations == 1 and tiers["smb"].escalations == 0
    # Globex: a person asked for (requested_human), VIP (enterprise) and renewing in 40 days
    assert dict(d.reasons) == {"requested_human": 1, "vip_account": 1, "renewal_window": 1}
    assert d.total.first_response.median == d.total.first_response.p90 == 600
    assert d.total.resolution.median == 3600
    assert d.total.csat_average == pytest.approx(11 / 3) and d.total.csat_count == 3
    assert tiers["enterprise"].csat_average == pytest.approx(4.5)
    assert d.csat_scores == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert dict(d.top_intents)["password_reset"] == 2
    reset = next(f for f in d.intent_feedback if f.intent == "password_reset")
    assert (reset.answers, reset.helpful, reset.didnt_help) == (2, 1, 1)
    assert reset.didnt_help_rate == pytest.approx(0.5)
    assert sum(n for _, n in d.escalations_per_day) == 1 and len(d.escalations_per_day) == 30
    assert old.total.csat_count == 1 and old.total.csat_average == 1
    # the CSM of Globex sees Globex only
    assert mine.scoped and [t.tier for t in mine.tiers] == ["enterprise"]
    assert (mine.total.conversations, mine.total.auto_resolved) == (1, 0)
    assert mine.total.csat_average == pytest.approx(4.5)
    assert [(f.intent, f.answers) for f in mine.intent_feedback] == [("invoice_request", 1)]

    # the page shows the same figures, with SVG charts and accessible titles
    c.login("admin")
    page = c.client.get("/console/dashboard")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    text = page.text
    assert _field(_tier_row(text, "All tiers"), "deflection") == "66.7%"
    assert _field(_tier_row(text, "smb"), "deflection") == "100.0%"
    assert _field(_tier_row(text, "All tiers"), "csat") == "3.67 (3)"
    assert 'data-reason="vip_account"' in text and "<svg" in text
    assert '<title id="chart-day-t">Escalations per day</title>' in text
    assert 'aria-current="page">Dashboard' in text and 'href="/console/admin"' in text
    start = (today - timedelta(days=40)).isoformat()
    ranged = c.client.get(f"/console/dashboard?start={start}&end={start}").text
    assert _field(_tier_row(ranged, "All tiers"), "csat") == "1.00 (1)"
    bad = c.client.get("/console/dashboard?start=yesterday&end=2026-99-01")
    assert bad.status_code == 200 and "showing the last 30 days" in bad.text
    backwards = c.client.get(f"/console/dashboard?start={today}&end={start}")
    assert "before the start date" in backwards.text

    c.login("csm")
    page_csm = c.client.get("/console/dashboard").text
    assert "Your accounts" in page_csm and 'data-tier="smb"' not in page_csm
    assert _field(_tier_row(page_csm, "enterprise"), "deflection") == "0.0%"
    assert 'href="/console/admin"' not in page_csm


# ------------------------------------------------------------------------- admin access
def test_admin_page_is_refused_to_agents_and_csms_and_csrf_is_required(admin: Admin) -> None:
    c = admin.console
    for who in ("agent", "csm"):
        c.login(who)
        r = c.client.get("/console/admin")
        assert r.status_code == 403 and "Only admins" in r.text
        r = admin.post("/console/admin/users", email="x@t.test", name="X", role="admin",
                       password=PASSWORD)  # fmt: skip
        assert r.status_code == 403
        assert admin.post("/console/admin/model/retrain").status_code == 403
        assert admin.post("/console/admin/strategic-terms", terms="x").status_code == 403
    c.login("admin")
    before = admin.policy.read_bytes()
    for path, form in (
        ("/console/admin/users", {"email": "x@t.test", "name": "X", "role": "admin"}),
        ("/console/admin/policy", {"vip_min_arr": "1"}),
        ("/console/admin/faq/password_reset", {"answer": "forged"}),
        ("/console/admin/strategic-terms", {"terms": "forged"}),
        (f"/console/admin/users/{c.ids['agent']}/active", {"active": "0"}),
    ):
        assert c.client.post(path, data={**form, "password": PASSWORD}).status_code == 403
    with Session(c.engine) as s:
        assert s.exec(select(User).where(User.email == "x@t.test")).first() is None
        agent = s.get(User, c.ids["agent"])
        assert agent is not None and agent.is_active
    assert admin.policy.read_bytes() == before
    assert "forged" not in (admin.faq / FAQ_FILE).read_text()


def test_admin_creates_a_user_who_logs_in_and_a_deactivated_user_cannot(admin: Admin) -> None:
    c = admin.console
    c.login("admin")
    page = c.client.get("/console/admin")
    assert page.status_code == 200 and "agent@t.test" in page.text
    r = admin.post(
        "/console/admin/users", email="new@t.test", name="Nia New", role="agent", password=PASSWORD
    )
    assert r.status_code == 303
    assert "User new@t.test created." in c.client.get("/console/admin").text
    short = admin.post(
        "/console/admin/users", email="n2@t.test", name="N2", role="agent", password="short"
    )
    assert "at least 8 characters" in c.client.get(short.headers["location"]).text
    with Session(c.engine) as s:
        new = s.exec(select(User).where(User.email == "new@t.test")).one()
        assert (
            new.role == "agent"
            and s.exec(select(User).where(User.email == "n2@t.test")).first() is None
        )
    assert admin.post(f"/console/admin/users/{new.id}/role", role="csm").status_code == 303
    token_page = admin.post(f"/console/admin/users/{new.id}/token")
    token = re.search(r'<code class="token">(tb_[^<]+)</code>', token_page.text)
    assert token_page.status_code == 200 and token
    api = c.client.get("/api/v1/handoffs", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert api.status_code == 200
    assert token.group(1) not in c.client.get("/console/admin").text  # shown once

    assert c.login("new").status_code == 303
    assert "Nia New" in c.client.get("/console").text
    before_deactivation = c.client.cookies.get(COOKIE_NAME)
    time.sleep(1.05)  # sessions carry whole seconds; this one is older than the deactivation
    c.login("admin")
    assert admin.post(f"/console/admin/users/{new.id}/active", active="0").status_code == 303
    assert c.login("new").status_code == 401
    c.login("admin")  # a login attempt starts a fresh session, failed or not
    # the last active admin cannot lock themselves out
    r = admin.post(f"/console/admin/users/{c.ids['admin']}/active", active="0")
    assert "last active admin" in c.client.get(r.headers["location"]).text
    with Session(c.engine) as s:
        me = s.get(User, c.ids["admin"])
        assert me is not None and me.is_active and me.role == "admin"
    assert admin.post(f"/console/admin/users/{new.id}/active", active="1").status_code == 303
    # reactivated: the session open before the deactivation does not come back to life
    c.client.cookies.clear()
    c.client.cookies.set(COOKIE_NAME, before_deactivation or "", path="/console")
    assert c.client.get("/console", follow_redirects=False).status_code == 303
    assert c.login("new").status_code == 303


# ---------------------------------------------------------------------- FAQ and policy
def test_faq_answer_edit_applies_to_the_next_message_and_a_broken_template_is_refused(
    admin: Admin,
) -> None:
    c = admin.console
    file = admin.faq / FAQ_FILE
    data_hash = faq_data_hash(admin.faq)
    repo_file = (ROOT / "data" / "faq" / FAQ_FILE).read_bytes()
    c.login("admin")
    new = "NEW ANSWER{% if contact_name %} for {{ contact_name }}{% endif %}: open {{ reset_url }}"
    r = admin.post("/console/admin/faq/password_reset", answer=new)
    assert r.status_code == 303
    assert "Answer of password_reset saved." in c.client.get("/console/admin").text
    assert c.customer(PLAIN_CHAT, "i forgot my password").json()["action"] == "answered"
    c.fake.wait_for(
        lambda f: any(t.startswith("NEW ANSWER for Pat Plain: open") for t in f.texts(PLAIN_CHAT))
    )
    assert faq_data_hash(admin.faq) == data_hash  # only the answer changed: no retrain needed
    assert file.read_text().startswith("# triagebot FAQ / intent catalogue")

    saved = file.read_bytes()
    broken = admin.post("/console/admin/faq/password_reset", answer="Hi {% if contact_name %}")
    assert broken.status_code == 422
    assert "Not saved: the answer template is not valid" in broken.text
    assert "Hi {% if contact_name %}" in broken.text  # the admin's text is kept in the form
    unsafe = admin.post("/console/admin/faq/password_reset", answer="{{ ''.__class__ }}")
    assert unsafe.status_code == 422 and "unsafe" in unsafe.text
    human = admin.post("/console/admin/faq/talk_to_human", answer="Hello")
    assert human.status_code == 422 and "never answered automatically" in human.text
    assert file.read_bytes() == saved
    c.customer(ANON_CHAT, "i forgot my password")
    c.fake.wait_for(lambda f: any(t.startswith("NEW ANSWER") for t in f.texts(ANON_CHAT)))
    assert (ROOT / "data" / "faq" / FAQ_FILE).read_bytes() == repo_file


def test_lowering_the_vip_arr_threshold_makes_an_account_vip(admin: Admin) -> None:
    c = admin.console
    services = c.client.app.state.services  # type: ignore[attr-defined]
    today = date.today()
    with Session(c.engine) as s:
        hooli = s.exec(select(Account).where(Account.name == "Hooli")).one()  # ARR 3,000
        facts = context.account_facts(hooli)
    policy = services.models.config().policy
    assert escalation.Reason.vip_account not in escalation.account_flags(policy, facts, today)
    c.login("admin")
    form = dict(VIP_ARR_2000)
    refused = admin.post("/console/admin/policy", **{**form, "min_confidence": "2"})
    assert "Not saved" in c.client.get(refused.headers["location"]).text
    assert "min_arr: 50000" in admin.policy.read_text()
    assert admin.post("/console/admin/policy", **form).status_code == 303
    text = admin.policy.read_text()
    assert "min_arr: 2000" in text and "# Escalation policy" in text  # comments kept
    assert services.models.config().policy.vip.min_arr == 2000
    handoff_id = c.escalate(PLAIN_CHAT, "I want to talk to a person")
    assert "vip_account" in c.handoff(handoff_id).reasons
    assert 'value="2000"' in c.client.get("/console/admin").text
    assert "min_arr: 50000" in (ROOT / "data" / "policy.yaml").read_text()


def test_admin_edits_the_strategic_terms_and_the_next_message_obeys_them(admin: Admin) -> None:
    c = admin.console
    text = "how do i export all my data, our auditor asked for it"
    assert c.customer(PLAIN_CHAT, text).json()["action"] == "answered"  # data_export FAQ
    c.login("admin")
    page = c.client.get("/console/admin").text
    assert "gdpr" in page and 'id="terms"' in page

    r = admin.post("/console/admin/strategic-terms", terms="gdpr\n  our   Auditor \n\nGDPR\n")
    assert r.status_code == 303
    assert "Strategic terms saved (2)." in c.client.get("/console/admin").text
    saved = admin.policy.read_text()
    assert "strategic_terms:\n  - gdpr\n  - our Auditor\n" in saved
    assert "# Words and phrases that always reach a person" in saved  # comments kept
    assert "min_arr: 50000" in saved  # the rest untouched
    assert (
        c.customer(PLAIN_CHAT, "how do i export all my data, our auditor asked again").json()[
            "action"
        ]
        == "escalated"
    )
    with Session(c.engine) as s:
        handoff = s.exec(select(Handoff).order_by(Handoff.id.desc())).first()  # type: ignore[union-attr]
    assert handoff is not None and "strategic_intent" in handoff.reasons
    page = c.client.get(f"/console/handoffs/{handoff.id}").text
    assert "names “our auditor”" in page  # the agent sees why it reached them

    before = admin.policy.read_bytes()
    refused = admin.post("/console/admin/strategic-terms", terms="ok\n" + "x" * 101)
    assert (
        "Not saved: a term is at most 100 characters"
        in c.client.get(refused.headers["location"]).text
    )
    assert admin.policy.read_bytes() == before


def test_an_edit_made_through_one_instance_reaches_another_and_a_broken_file_is_not_loaded(
    admin: Admin, database_url: str, model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = admin.console
    other_settings = make_settings(
        database_url,
        model_path,
        faq_path=admin.faq,
        policy_path=admin.policy,
        config_reload_seconds=0.05,
    )
    with TestClient(create_app(other_settings, run_worker=False)) as other:
        models = other.app.state.services.models  # type: ignore[attr-defined]
        assert models.config().policy.vip.min_arr == 50000
        c.login("admin")
        form = dict(VIP_ARR_2000)
        assert admin.post("/console/admin/policy", **form).status_code == 303
        new = "NEWER ANSWER: open {{ reset_url }}"
        assert admin.post("/console/admin/faq/password_reset", answer=new).status_code == 303
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            models.config().policy.vip.min_arr != 2000
            or "NEWER ANSWER" not in (models.config().intents["password_reset"].answer or "")
        ):
            time.sleep(0.05)
        assert models.config().policy.vip.min_arr == 2000
        assert models.config().intents["password_reset"].answer.startswith("NEWER ANSWER")

        # a hand edit that breaks the file: the instance keeps what it had and says why
        admin.policy.write_text("vip: [this is not, a policy", encoding="utf-8")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "does not load" not in caplog.text:
            time.sleep(0.05)
        assert "does not load: keeping the old" in caplog.text
        assert models.config().policy.vip.min_arr == 2000


# -------------------------------------------------------------------------------- model
def test_retrain_runs_in_the_background_once_at_a_time_and_reloads(
    tmp_path: Path, sqlite_template: Path, model_path: Path, fake_bot_api: FakeBotApi
) -> None:
    db = tmp_path / "retrain.db"
    shutil.copy(sqlite_template, db)
    own_model = tmp_path / "model" / model_path.name
    own_model.parent.mkdir()
    for file in model_path.parent.iterdir():  # the model and its metadata beside it
        shutil.copy(file, own_model.parent / file.name)
    for admin in _start(f"sqlite:///{db}", own_model, fake_bot_api, tmp_path):
        c = admin.console
        services = c.client.app.state.services  # type: ignore[attr-defined]
        before = services.models.classifier().metadata_["trained_at"]
        c.login("admin")
        page = c.client.get("/console/admin").text
        assert "CV accuracy" in page and "yes (FAQ examples unchanged)" in page
        r = admin.post("/console/admin/model/retrain")
        assert "Retraining started." in c.client.get(r.headers["location"]).text
        retrainer = c.client.app.state.retrainer  # type: ignore[attr-defined]
        if retrainer.state().running:  # training takes seconds: a second click is refused
            page = c.client.get("/console/admin").text
            assert "training…" in page and 'data-training="1"' in page  # admin.js polls
            again = admin.post("/console/admin/model/retrain")
            assert "already running" in c.client.get(again.headers["location"]).text
        assert retrainer.wait(timeout=120)
        state = retrainer.state()
        assert state.error is None and state.finished_at is not None
        meta = services.models.classifier().metadata_
        assert meta["trained_at"] >= before and meta["data_hash"] == faq_data_hash(admin.faq)
        assert "Retrain</button>" in c.client.get("/console/admin").text
        card = c.client.get("/console/admin/model/card").text
        assert 'id="model-result">finished' in card and "CV accuracy" in card


# ----------------------------------------------------------------------- pure helpers
def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert metrics.percentile([], 50) is None
    assert metrics.percentile([7], 90) == 7
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile(list(range(1, 11)), 90) == pytest.approx(9.1)


def test_chart_geometry_scales_to_the_largest_value() -> None:
    bars = charts.bar_chart([("a", 0), ("b", 5), ("c", 10)], width=340, height=120)
    assert [b["h"] for b in bars["bars"]][0] == 0
    assert bars["bars"][2]["h"] == 120 - charts.PAD_TOP - charts.PAD_BOTTOM
    assert charts.nice_max(7) == 10 and charts.nice_max(130) == 200
    h = charts.hbars([("x", 4), ("y", 2)], width=400)
    assert h["rows"][1]["w"] == pytest.approx(h["rows"][0]["w"] / 2)
    line = charts.line_chart([("d1", 1), ("d2", 3)])
    assert line["path"].startswith("M") and " L" in line["path"]
