"""Issue 6: the agent console (login, CSRF, role scoping, working a handoff through forms)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select

from bot.app import create_app
from bot.web.sessions import COOKIE_NAME, LoginLimiter, SessionSigner, csrf_ok
from handoff import users
from handoff.models import Account, Contact, Handoff, Message, OutboxEntry, User
from tests.conftest import WEBHOOK_SECRET, make_settings
from tests.factories import tg_text_update
from tests.fakes.telegram_api import FakeBotApi

PASSWORD = "correct-horse-battery"
VIP_CHAT = 6001
PLAIN_CHAT = 6002
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(engine: Any) -> dict[str, int]:
    """Staff with passwords (one inactive), a VIP account with a QBR date and a plain one."""
    today = date.today()
    digest = users.hash_password(PASSWORD)
    with Session(engine, expire_on_commit=False) as s:
        people = {
            "admin": User(email="admin@t.test", name="Ada Admin", role="admin"),
            "agent": User(email="agent@t.test", name="Alan Agent", role="agent"),
            "agent2": User(email="agent2@t.test", name="Grace Agent", role="agent"),
            "csm": User(email="csm@t.test", name="Cora CSM", role="csm"),
            "csm2": User(email="csm2@t.test", name="Otto CSM", role="csm"),
            "gone": User(email="gone@t.test", name="Gone Agent", role="agent", is_active=False),
        }
        for u in people.values():
            u.password_hash = digest
            s.add(u)
        s.flush()
        vip = Account(
            external_id="VIP-1",
            name="Globex",
            plan="Enterprise",
            tier="enterprise",
            arr=250_000,
            renewal_date=today + timedelta(days=40),
            next_qbr_date=today + timedelta(days=6),
            expansion_stage="proposal",
            csm_id=people["csm"].id,
            health_score=72,
            health_status="yellow",
            attributes={"health_factors": ["logins down 30% in 30 days", "NPS 6"]},
        )
        plain = Account(
            external_id="SMB-1",
            name="Hooli",
            plan="Starter",
            tier="smb",
            arr=3_000,
            csm_id=people["csm2"].id,
            health_score=90,
            health_status="green",
            renewal_date=today + timedelta(days=300),
        )
        s.add(vip)
        s.add(plain)
        s.flush()
        s.add(Contact(account_id=vip.id, name="Vera VIP", link_token="vip-token-123"))
        s.add(Contact(account_id=plain.id, name="Pat Plain", link_token="plain-token-123"))
        s.commit()
        return {name: u.id or 0 for name, u in people.items()}


class Console:
    def __init__(self, client: TestClient, fake: FakeBotApi, ids: dict[str, int]) -> None:
        self.client = client
        self.fake = fake
        self.ids = ids
        self.engine = client.app.state.services.engine  # type: ignore[attr-defined]

    def customer(self, chat: int, text: str) -> Any:
        return self.client.post(
            "/webhooks/telegram",
            json=tg_text_update(chat, text),
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )

    def escalate(self, chat: int, text: str = "I want to talk to a person") -> int:
        assert self.customer(chat, text).json()["action"] == "escalated"
        with Session(self.engine) as s:
            return max(s.exec(select(Handoff.id)).all())  # type: ignore[type-var]

    def csrf(self, path: str = "/console/login") -> str:
        match = CSRF_RE.search(self.client.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, who: str, password: str = PASSWORD) -> Any:
        self.client.cookies.clear()
        token = self.csrf()
        return self.client.post(
            "/console/login",
            data={"email": f"{who}@t.test", "password": password, "csrf_token": token},
            follow_redirects=False,
        )

    def act(self, handoff_id: int, action: str, **form: str) -> Any:
        token = self.csrf(f"/console/handoffs/{handoff_id}")
        return self.client.post(
            f"/console/handoffs/{handoff_id}/{action}",
            data={"csrf_token": token, **form},
            follow_redirects=False,
        )

    def handoff(self, handoff_id: int) -> Handoff:
        with Session(self.engine) as s:
            h = s.get(Handoff, handoff_id)
            assert h is not None
            return h


@pytest.fixture
def console(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Console]:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    with TestClient(create_app(settings)) as client:
        c = Console(client, fake_bot_api, seed(client.app.state.services.engine))  # type: ignore[attr-defined]
        c.customer(VIP_CHAT, "/start vip-token-123")
        c.customer(PLAIN_CHAT, "/start plain-token-123")
        fake_bot_api.wait_for(lambda f: f.texts(VIP_CHAT) and f.texts(PLAIN_CHAT))
        yield c


# ------------------------------------------------------------------------------- login
def test_login_with_the_right_password_opens_the_queue(console: Console) -> None:
    r = console.login("agent")
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    page = console.client.get("/console")
    assert page.status_code == 200
    assert "Alan Agent" in page.text and "Queue" in page.text


@pytest.mark.parametrize("email_user", ["agent", "nobody"])
def test_wrong_password_or_unknown_email_gets_one_generic_error(
    console: Console, email_user: str
) -> None:
    r = console.login(email_user, "wrong-password-1")
    assert r.status_code == 401
    assert "Wrong email or password." in r.text
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_inactive_user_cannot_log_in(console: Console) -> None:
    r = console.login("gone")
    assert r.status_code == 401 and "Wrong email or password." in r.text
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_repeated_failed_logins_are_refused_even_with_the_right_password(
    console: Console,
) -> None:
    for _ in range(5):
        assert console.login("agent", "wrong-password-1").status_code == 401
    r = console.login("agent")
    assert r.status_code == 429 and "Too many failed attempts" in r.text
    # another user from the same address is not locked out
    assert console.login("agent2").status_code == 303


def test_login_post_without_csrf_token_is_refused(console: Console) -> None:
    console.client.cookies.clear()
    r = console.client.post(
        "/console/login",
        data={"email": "agent@t.test", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert console.client.get("/console", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "path", ["/console", "/console/accounts", "/console/handoffs/1", "/console/?status=waiting"]
)
def test_pages_redirect_to_login_when_logged_out(console: Console, path: str) -> None:
    r = console.client.get(path, follow_redirects=True)
    assert r.url.path == "/console/login"
    assert 'name="password"' in r.text


def test_json_endpoints_answer_401_when_logged_out(console: Console) -> None:
    assert console.client.get("/console/queue.json").status_code == 401
    assert console.client.get("/console/handoffs/1/updates.json").status_code == 401


def test_a_forged_session_cookie_is_not_a_login(console: Console) -> None:
    assert console.login("agent").status_code == 303
    value = console.client.cookies.get(COOKIE_NAME)
    assert value
    body, _, mac = value.partition(".")
    console.client.cookies.clear()
    console.client.cookies.set(COOKIE_NAME, body + "." + mac[::-1], path="/console")
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(console: Console) -> None:
    console.login("agent")
    token = console.csrf("/console")
    r = console.client.post("/console/logout", data={"csrf_token": token}, follow_redirects=True)
    assert r.url.path == "/console/login" and "You are logged out." in r.text
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_logout_also_kills_a_copy_of_the_session_cookie(console: Console) -> None:
    console.login("agent")
    copied = console.client.cookies.get(COOKIE_NAME)
    assert copied
    token = console.csrf("/console")
    time.sleep(1.05)  # sessions carry whole seconds; this one is older than the logout
    console.client.post("/console/logout", data={"csrf_token": token})
    console.client.cookies.set(COOKIE_NAME, copied, path="/console")
    assert console.client.get("/console", follow_redirects=False).status_code == 303
    assert console.client.get("/console/queue.json").status_code == 401
    # logging in again right away works: a new session, issued after the logout
    console.client.cookies.clear()
    console.login("agent")
    assert console.client.get("/console", follow_redirects=False).status_code == 200


# -------------------------------------------------------------------------------- CSRF
@pytest.mark.parametrize("token", [None, "not-the-token", ""])
def test_post_without_the_right_csrf_token_is_refused_and_changes_nothing(
    console: Console, token: str | None
) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    form = {"text": "hello from a forged form"}
    if token is not None:
        form["csrf_token"] = token
    for action in ("claim", "reply", "note", "return-to-bot"):
        r = console.client.post(f"/console/handoffs/{handoff_id}/{action}", data=form)
        assert r.status_code == 403, action
    h = console.handoff(handoff_id)
    assert h.status == "waiting" and h.assignee_id is None and h.version == 0
    with Session(console.engine) as s:
        assert not s.exec(select(Message).where(Message.text == form["text"])).all()
    r = console.client.post("/console/take-next", data={})
    assert r.status_code == 403
    assert console.handoff(handoff_id).status == "waiting"


# ------------------------------------------------------------------------ role scoping
def test_csm_cannot_open_or_act_on_another_accounts_handoff(console: Console) -> None:
    other = console.escalate(PLAIN_CHAT)  # Hooli belongs to csm2
    own = console.escalate(VIP_CHAT, "we are thinking about not renewing our contract")
    console.login("csm")
    assert console.client.get(f"/console/handoffs/{other}").status_code == 404
    assert console.client.get(f"/console/handoffs/{other}/updates.json").status_code == 404
    token = console.csrf("/console")
    r = console.client.post(f"/console/handoffs/{other}/claim", data={"csrf_token": token})
    assert r.status_code == 404
    assert console.handoff(other).status == "waiting"
    rows = console.client.get("/console/queue.json").json()["rows"]
    assert [row["id"] for row in rows] == [own]
    page = console.client.get("/console/accounts").text
    assert "Globex" in page and "Hooli" not in page and "Pat Plain" not in page
    assert console.client.get(f"/console/handoffs/{own}").status_code == 200


def test_admin_sees_every_account(console: Console) -> None:
    console.login("admin")
    page = console.client.get("/console/accounts").text
    assert "Globex" in page and "Hooli" in page and "All accounts" in page


# ---------------------------------------------------------------------- working a handoff
def test_agent_claims_and_replies_by_form_and_the_customer_receives_it(console: Console) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    r = console.act(handoff_id, "claim", version="0")
    assert r.status_code == 303
    h = console.handoff(handoff_id)
    assert h.status == "assigned" and h.assignee_id == console.ids["agent"]
    r = console.act(handoff_id, "reply", text="Hi Vera, I'm on it.")
    assert r.status_code == 303
    with Session(console.engine) as s:
        entry = s.exec(select(OutboxEntry).where(OutboxEntry.channel == "telegram")).all()
        assert any(e.payload.get("text") == "Hi Vera, I'm on it." for e in entry)
    console.fake.wait_for(lambda f: "Hi Vera, I'm on it." in f.texts(VIP_CHAT))
    page = console.client.get(f"/console/handoffs/{handoff_id}")
    assert "Reply sent." in page.text and "Hi Vera, I&#39;m on it." in page.text


def test_a_reply_that_never_reached_the_customer_is_flagged_in_console_and_api(
    console: Console,
) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    console.fake.fail_next(403, "Forbidden: bot was blocked by the user", method="sendMessage")
    console.act(handoff_id, "reply", text="Hi Vera, are you still there?")

    def dead() -> bool:
        with Session(console.engine) as s:
            entries = s.exec(select(OutboxEntry)).all()
            return any(
                e.status == "dead" and e.payload.get("text") == "Hi Vera, are you still there?"
                for e in entries
            )

    deadline = time.monotonic() + 10
    while not dead():
        assert time.monotonic() < deadline, "the failed reply was never dead-lettered"
        time.sleep(0.05)
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    failed = re.search(r'<div class="line__failed" role="alert">Not delivered: ([^<]+)</div>', page)
    assert failed and "blocked" in failed.group(1)
    updates = console.client.get(f"/console/handoffs/{handoff_id}/updates.json").json()
    assert list(updates["failed"].values()) == [failed.group(1)]
    # only that reply is flagged: the earlier bot message reached the customer
    assert page.count('class="line__failed"') == 1
    # the REST API says the same
    with Session(console.engine) as s:
        agent = s.get(User, console.ids["agent"])
        assert agent is not None
        token = users.issue_api_token(s, agent)
        s.commit()
    detail = console.client.get(
        f"/api/v1/handoffs/{handoff_id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    flagged = {m["text"]: m["undelivered"] for m in detail["transcript"] if m["undelivered"]}
    assert flagged == {"Hi Vera, are you still there?": failed.group(1)}


def test_second_agent_sees_a_taken_handoff_and_gets_a_flash_on_claim(console: Console) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    console.login("agent2")
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    assert "Taken by Alan Agent" in page
    token = console.csrf("/console")
    r = console.client.post(
        f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": token}, follow_redirects=True
    )
    assert "already taken" in r.text and "flash--error" in r.text
    assert console.handoff(handoff_id).assignee_id == console.ids["agent"]


def test_resolve_with_a_code_closes_the_handoff_and_asks_for_csat(console: Console) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    console.act(handoff_id, "claim")
    r = console.act(handoff_id, "resolve", resolution_code="answered", ask_csat="1", confirm="1")
    assert r.status_code == 303
    h = console.handoff(handoff_id)
    assert h.status == "resolved" and h.resolution_code == "answered"
    console.fake.wait_for(lambda f: any("How did we do?" in t for t in f.texts(VIP_CHAT)))


def test_private_note_is_stored_and_never_sent(console: Console) -> None:
    handoff_id = console.escalate(VIP_CHAT)
    console.login("agent")
    before = len(console.fake.texts(VIP_CHAT))
    console.act(handoff_id, "note", text="customer is upset about invoices")
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    assert "line--note" in page and "customer is upset about invoices" in page
    assert len(console.fake.texts(VIP_CHAT)) == before


def test_conversation_page_shows_the_cs_context_and_escapes_customer_text(
    console: Console,
) -> None:
    handoff_id = console.escalate(VIP_CHAT, "talk to a human <script>alert(1)</script>")
    console.login("agent")
    r = console.client.get(f"/console/handoffs/{handoff_id}")
    page = r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    qbr = (date.today() + timedelta(days=6)).isoformat()
    assert qbr in page and "in 6 days" in page
    assert "250,000" in page and "Cora CSM" in page and "logins down 30% in 30 days" in page
    headers = r.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def test_queue_lists_the_vip_handoff_first_with_its_badges(console: Console) -> None:
    console.escalate(PLAIN_CHAT)
    vip = console.escalate(VIP_CHAT, "we are thinking about not renewing our contract")
    console.login("agent")
    rows = console.client.get("/console/queue.json").json()["rows"]
    assert rows[0]["id"] == vip and rows[0]["priority_label"] == "P1"
    assert "VIP" in [b["label"] for b in rows[0]["reasons"]]
    filtered = console.client.get("/console/queue.json?reason=vip_account").json()["rows"]
    assert [row["id"] for row in filtered] == [vip]


# ---------------------------------------------------------------- sessions (no sockets)
def test_session_cookie_expires_and_rejects_tampering() -> None:
    signer = SessionSigner("x" * 40)
    session, value = signer.issue(7, now=1_000_000)
    assert signer.verify(value, now=1_000_010) == session
    assert signer.verify(value, now=1_000_000 + 12 * 3600 + 1) is None
    assert SessionSigner("y" * 40).verify(value, now=1_000_010) is None
    assert csrf_ok(session, session.csrf) and not csrf_ok(
        session, session.csrf[:-1] + ("B" if session.csrf.endswith("A") else "A")
    )


def test_login_limiter_forgets_failures_after_the_window() -> None:
    limiter = LoginLimiter(max_failures=2, window_seconds=60)
    limiter.failed("a@t.test", "1.2.3.4", now=0)
    limiter.failed("A@t.test", "1.2.3.4", now=1)
    assert limiter.retry_after("a@t.test", "1.2.3.4", now=2) > 0
    assert limiter.retry_after("a@t.test", "5.6.7.8", now=2) == 0
    assert limiter.retry_after("a@t.test", "1.2.3.4", now=62) == 0


def test_prod_requires_a_session_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SESSION_SECRET"):
        make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "m.joblib", environment="prod")


def test_health_trend_is_shown_on_accounts_and_in_the_context_card(console: Console) -> None:
    from datetime import UTC, datetime, time

    from handoff.models import HealthSnapshot

    today = date.today()
    with Session(console.engine) as s:
        globex = s.exec(select(Account).where(Account.name == "Globex")).one()
        for back, score in ((40, 99), (20, 90), (10, 81), (0, 72)):
            at = datetime.combine(today - timedelta(days=back), time(9), tzinfo=UTC)
            s.add(HealthSnapshot(account_id=globex.id, score=score, status="x", computed_at=at))
        s.commit()
    handoff_id = console.escalate(VIP_CHAT)
    console.login("csm")
    accounts = console.client.get("/console/accounts").text
    # the 40-day-old snapshot is outside the 30-day window: 90 -> 72 over 20 days
    assert "-18 in 20 days" in accounts and "trend--down" in accounts
    page = console.client.get(f"/console/handoffs/{handoff_id}").text
    card = re.search(r'<span id="health-trend">(.*?)</span>\s*\n', page, re.S)
    assert card and "-18 in 20 days" in card.group(1)
    assert 'aria-label="Health over the last 30 days: -18 in 20 days"' in page
    # Hooli has no history: no trend, no empty chart
    assert accounts.count('<svg class="spark"') == 1


def test_csm_sees_and_acknowledges_only_their_own_proactive_alerts(console: Console) -> None:
    from handoff.models import CsAlert

    with Session(console.engine) as s:
        accounts = {a.name: a for a in s.exec(select(Account)).all()}
        mine = CsAlert(
            account_id=accounts["Globex"].id,
            csm_id=console.ids["csm"],
            kind="usage_drop",
            title="Globex: active users -42% over 3 weeks",
            body="<b>no ticket</b> yet",
        )
        theirs = CsAlert(
            account_id=accounts["Hooli"].id,
            csm_id=console.ids["csm2"],
            kind="turned_red",
            title="Hooli turned red",
        )
        s.add(mine)
        s.add(theirs)
        s.commit()
        mine_id, theirs_id = mine.id, theirs.id
    console.login("csm")
    page = console.client.get("/console/accounts").text
    assert "Globex: active users -42% over 3 weeks" in page and "Hooli turned red" not in page
    assert "&lt;b&gt;no ticket&lt;/b&gt; yet" in page  # shown as text
    token = console.csrf("/console/accounts")
    refused = console.client.post(
        f"/console/alerts/{theirs_id}/ack", data={"csrf_token": token}, follow_redirects=True
    )
    assert "only the alert&#39;s CSM may acknowledge it" in refused.text
    no_csrf = console.client.post(f"/console/alerts/{mine_id}/ack", data={})
    assert no_csrf.status_code == 403
    done = console.client.post(
        f"/console/alerts/{mine_id}/ack", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Alert acknowledged." in done.text
    assert "Globex: active users -42% over 3 weeks" not in done.text
    with Session(console.engine) as s:
        acked = s.get(CsAlert, mine_id)
        other = s.get(CsAlert, theirs_id)
        assert acked is not None and acked.acknowledged_by == console.ids["csm"]
        assert other is not None and other.acknowledged_at is None
    console.login("admin")
    assert "Hooli turned red" in console.client.get("/console/accounts").text
