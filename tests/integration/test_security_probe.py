"""Issue 13: the catalogue of hostile inputs, replayed against every entry point — no 5xx.

Every REST endpoint × six callers (no token, a forged token, admin, agent, the account's CSM,
another CSM) × bad bodies and bad ids; the web chat; the Telegram webhook (right secret);
the console's forms and paths. Each answer must be below 500. The figures printed at the end
(``pytest -s``) are the ones in docs/security.md.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from handoff import users
from handoff.models import Contact, Handoff, User
from tests.conftest import WEBHOOK_SECRET
from tests.factories import next_update_id, tg_text_update
from tests.integration.desk_support import VIP_CHAT, Desk

CALLERS = ("none", "bad", "admin", "agent", "csm", "csm2")
BIG_IDS = ("0", "-1", str(2**31), str(2**63), str(10**30), "abc")
DEEP = '{"a": ' * 900 + "1" + "}" * 900
BODIES: list[bytes] = [
    b"[" * 100_000,
    b"{not json",
    b"\xff\xfe\x00",
    b"",
    b"null",
    b'["x"]',
    b'{"text": "a \\ud800 b", "reason": "\\udfff", "email": "\\ud800@x.test"}',
    b'{"text": "a\\u0000b", "reason": "\\u0000", "email": "a\\u0000@x.test"}',
    b'{"text": ["x"], "reason": {"x": 1}, "to_user_id": "x", "resolution_code": 1}',
    b'{"to_user_id": 9223372036854775808, "score": 1e309}',
    b'{"name": "X", "arr": NaN}',
    b'{"name": "X", "arr": Infinity, "active_users": -Infinity, "seats": NaN}',
    f'{{"name": "X", "attributes": {DEEP}}}'.encode(),
    b'{"score": 11, "date": "2026-13-45", "active_users": 99999999999999999999}',
]
CSV_BODIES: list[bytes] = [
    b"\xff\xfe",
    b"external_id,date\n\x00,2026-01-01\n",
    b'external_id,date,active_users,seats\n"unterminated,2026-01-01,1,1\n',
    b"external_id,date,active_users,seats\nVIP-1,2026-01-01,NaN,1\n",
]


def _api_paths(handoff: int, contact: int) -> list[tuple[str, str]]:
    h = f"/handoffs/{handoff}"
    return [
        ("GET", "/handoffs"),
        ("GET", h),
        ("POST", "/handoffs/take-next"),
        *(
            ("POST", f"{h}/{a}")
            for a in (
                "claim",
                "release",
                "transfer",
                "reply",
                "notes",
                "resolve",
                "return-to-bot",
                "link-contact",
            )
        ),
        ("PUT", "/accounts/VIP-1"),
        ("GET", "/accounts/VIP-1"),
        ("PUT", "/contacts"),
        ("DELETE", f"/contacts/{contact}"),
        ("PUT", "/accounts/VIP-1/usage/2026-01-01"),
        ("POST", "/accounts/VIP-1/nps"),
        ("POST", "/alerts/1/ack"),
    ]


class Tally:
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.failures: list[str] = []

    def check(self, where: str, response: Any) -> None:
        self.count[where] += 1
        if response.status_code >= 500:
            self.failures.append(f"{where}: {response.status_code} {response.text[:200]}")


def _headers(d: Desk, who: str, content_type: str = "application/json") -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if who == "bad":
        headers["Authorization"] = "Bearer tb_forged"
    elif who != "none":
        headers["Authorization"] = f"Bearer {d.tokens[who]}"
    return headers


def _probe_api(d: Desk, tally: Tally, handoff: int, contact: int) -> None:
    for method, path in _api_paths(handoff, contact):
        for who in CALLERS:
            for body in BODIES if method in ("POST", "PUT") else [b""]:
                r = d.client.request(
                    method, f"/api/v1{path}", content=body, headers=_headers(d, who)
                )
                tally.check("api", r)
    for template in ("/handoffs/{}", "/handoffs/{}/claim", "/contacts/{}", "/alerts/{}/ack"):
        for big in BIG_IDS:
            method = "GET" if template == "/handoffs/{}" else "POST"
            method = "DELETE" if template.startswith("/contacts") else method
            path = f"/api/v1{template.format(big)}"
            tally.check("api", d.client.request(method, path, headers=_headers(d, "admin")))
    for query in ("?priority=9223372036854775808", "?status=%00", "?limit=NaN", "?mine=x"):
        r = d.client.get(f"/api/v1/handoffs{query}", headers=_headers(d, "admin"))
        tally.check("api", r)
    for body in CSV_BODIES:
        r = d.client.post(
            "/api/v1/usage:import", content=body, headers=_headers(d, "admin", "text/csv")
        )
        tally.check("api", r)


def _probe_webchat(client: TestClient, tally: Tally) -> None:
    for body in [*BODIES, b'{"client_id": "abcdefgh12", "text": "\\ud800\\u0000"}']:
        client.cookies.clear()  # a fresh visitor each time: the rate limit is not the point
        r = client.post(
            "/chat/api/messages", content=body, headers={"Content-Type": "application/json"}
        )
        tally.check("webchat", r)
    for after in ("-1", "9223372036854775808", "1e9", "abc", str(10**40)):
        tally.check("webchat", client.get(f"/chat/api/messages?after={after}"))


def _probe_telegram(d: Desk, tally: Tally) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    shapes: list[Any] = []
    for mutate in (
        lambda m: m.pop("chat"),
        lambda m: m.update(text=["x"]),
        lambda m: m.update(text={"x": 1}),
        lambda m: m.update(chat={"id": "x"}),
        lambda m: m.update(chat=None),
        lambda m: m.update({"from": {"id": 1, "first_name": ["x"]}}),
        lambda m: m.update(caption=5, text=None),
        lambda m: m.update(date="yesterday"),
    ):
        update = tg_text_update(VIP_CHAT + 9, "hi")
        mutate(update["message"])
        shapes.append(json.dumps(update).encode())
    shapes += [
        json.dumps({"update_id": next_update_id(), "callback_query": {"id": "1"}}).encode(),
        json.dumps({"update_id": next_update_id(), "message": "x"}).encode(),
        json.dumps({"update_id": 2**70, "message": {}}).encode(),
        b"[" * 100_000,
        b'{"update_id": 5, "message": ' + DEEP.encode() + b"}",
        b"\xff\xfe",
    ]
    for body in shapes:
        tally.check("telegram", d.client.post("/webhooks/telegram", content=body, headers=headers))


def _probe_console(d: Desk, tally: Tally, handoff: int) -> None:
    csrf_re = re.compile(r'name="csrf_token" value="([^"]+)"')
    with Session(d.engine) as s:
        admin = s.exec(select(User).where(User.email == "admin@t.test")).one()
        admin.password_hash = users.hash_password("probe-password")
        s.add(admin)
        s.commit()
    client = d.client
    client.cookies.clear()
    token = csrf_re.search(client.get("/console/login").text)
    assert token
    for email in ("admin%00%40t.test", "%ED%A0%80", "%FF%FE", "x" * 400):  # NUL, surrogate
        r = client.post(
            "/console/login",
            content=f"email={email}&password=x&csrf_token={token[1]}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        tally.check("console", r)
    client.post(
        "/console/login",
        data={"email": "admin@t.test", "password": "probe-password", "csrf_token": token[1]},
    )
    token = csrf_re.search(client.get("/console").text)
    assert token
    fields = {"text": "a\x00b", "reason": "\x00", "version": str(2**63), "to_user_id": str(2**63)}
    for action in ("claim", "release", "transfer", "reply", "note", "resolve", "return-to-bot"):
        for target in (str(handoff), str(2**63), str(10**30)):
            r = client.post(
                f"/console/handoffs/{target}/{action}",
                data={"csrf_token": token[1], **fields},
                follow_redirects=False,
            )
            tally.check("console", r)
    for path in (
        "/console/admin/users",
        f"/console/admin/users/{2**63}/role",
        f"/console/admin/users/{2**63}/active",
        f"/console/admin/users/{2**63}/token",
        f"/console/alerts/{2**63}/ack",
        "/console/admin/faq/password_reset",
        "/console/admin/policy",
        "/console/admin/strategic-terms",
    ):
        data = {
            "csrf_token": token[1],
            "email": "n\x00@t.test",
            "name": "N\x00",
            "role": "agent",
            "password": "long-enough-pw",
            "answer": "{% for i in range(99999999) %}x{% endfor %}",
            "terms": "gdpr\x00",
        }
        tally.check("console", client.post(path, data=data, follow_redirects=False))
    for path in (
        f"/console/handoffs/{2**63}",
        f"/console/handoffs/{handoff}/updates.json?after={10**30}",
        "/console?status=%00&priority=99999999999999999999",
        "/console/dashboard?start=%00&end=9999-99-99",
    ):
        tally.check("console", client.get(path, follow_redirects=False))


def test_no_hostile_input_gets_a_5xx(app_desk: Desk, capsys: Any) -> None:
    d = app_desk
    d.post(tg_text_update(VIP_CHAT, "I want to talk to a person"))
    with Session(d.engine) as s:
        handoff = s.exec(select(Handoff.id)).one() or 0
        contact = s.exec(select(Contact.id).where(Contact.email == "pat@hooli.test")).one() or 0
    tally = Tally()
    _probe_api(d, tally, handoff, contact)
    _probe_webchat(d.client, tally)
    _probe_telegram(d, tally)
    _probe_console(d, tally, handoff)
    with capsys.disabled():
        db = "postgres" if "postgresql" in str(d.engine.url) else "sqlite"
        print(f"\nsecurity probe ({db}): {dict(tally.count)}, 5xx: {len(tally.failures)}")
    assert tally.failures == []


def test_the_probe_covers_every_api_route(app_desk: Desk) -> None:
    """A new API route must join the catalogue above."""
    routes = {
        (method, re.sub(r"\{[^}]+\}", "{}", route.path))
        for route in app_desk.client.app.routes  # type: ignore[attr-defined]
        if getattr(route, "path", "").startswith("/api/v1/")
        for method in getattr(route, "methods", ())
    }
    probed = {
        (m, "/api/v1" + re.sub(r"/(\d+|VIP-1|2026-01-01)(?=/|$)", "/{}", p))
        for m, p in _api_paths(1, 1)
    } | {("POST", "/api/v1/usage:import")}
    assert routes <= probed, sorted(routes - probed)
