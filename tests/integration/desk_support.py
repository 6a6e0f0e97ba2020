"""Seeded staff, accounts and a running app for queue, API, console and privacy tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from bot.app import create_app
from handoff import users
from handoff.models import Account, Contact, User
from tests.conftest import WEBHOOK_SECRET, make_settings
from tests.factories import tg_text_update
from tests.fakes.slack import FakeSlack, fake_slack
from tests.fakes.telegram_api import FakeBotApi

CSM_CHAT = 777001
VIP_CHAT = 5001
PLAIN_CHAT = 5002


class Desk:
    def __init__(self, client: TestClient, fake: FakeBotApi, slack: FakeSlack) -> None:
        self.client = client
        self.fake = fake
        self.slack = slack
        self.services = client.app.state.services  # type: ignore[attr-defined]
        self.engine = self.services.engine
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def post(self, update: dict[str, Any]) -> Any:
        return self.client.post(
            "/webhooks/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )

    def api(self, method: str, path: str, who: str | None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kw)


def _seed(engine: Any) -> tuple[dict[str, str], dict[str, int]]:
    today = date.today()
    with Session(engine, expire_on_commit=False) as s:
        people = {
            "admin": User(email="admin@t.test", name="Ada Admin", role="admin"),
            "agent": User(email="agent@t.test", name="Alan Agent", role="agent"),
            "agent2": User(email="agent2@t.test", name="Grace Agent", role="agent"),
            "csm": User(
                email="csm@t.test", name="Cora CSM", role="csm", telegram_chat_id=str(CSM_CHAT)
            ),
            "csm2": User(email="csm2@t.test", name="Otto CSM", role="csm"),
        }
        for u in people.values():
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
        s.add(
            Contact(
                account_id=vip.id,
                name="Vera VIP",
                email="vera@globex.test",
                link_token="vip-token-123",
            )
        )
        s.add(
            Contact(
                account_id=plain.id,
                name="Pat Plain",
                email="pat@hooli.test",
                link_token="plain-token-123",
            )
        )
        tokens = {name: users.issue_api_token(s, u) for name, u in people.items()}
        ids = {name: u.id or 0 for name, u in people.items()}
        s.commit()
    return tokens, ids


def seeded_desk(
    database_url: str, model_path: Path, fake_bot_api: FakeBotApi, **overrides: Any
) -> Iterator[Desk]:
    """A running app with seeded users (with API tokens), a VIP and a plain account."""
    with fake_slack() as slack:
        settings = make_settings(
            database_url,
            model_path,
            telegram_api_base_url=fake_bot_api.base_url,
            slack_webhook_url=slack.url,
            **overrides,
        )
        with TestClient(create_app(settings)) as client:
            d = Desk(client, fake_bot_api, slack)
            d.tokens, d.ids = _seed(d.engine)
            d.post(tg_text_update(VIP_CHAT, "/start vip-token-123"))
            d.post(tg_text_update(PLAIN_CHAT, "/start plain-token-123"))
            fake_bot_api.wait_for(
                lambda f: len(f.texts(VIP_CHAT)) >= 1 and len(f.texts(PLAIN_CHAT)) >= 1
            )
            yield d
