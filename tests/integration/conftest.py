from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from tests.conftest import WEBHOOK_SECRET, make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.desk_support import Desk, seeded_desk


class Service:
    """A running app plus helpers to post Telegram updates to it."""

    def __init__(self, client: TestClient, fake: FakeBotApi) -> None:
        self.client = client
        self.fake = fake
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def post_update(self, update: dict[str, Any], secret: str | None = WEBHOOK_SECRET) -> Any:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return self.client.post("/webhooks/telegram", json=update, headers=headers)


@pytest.fixture
def service(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Service]:
    settings = make_settings(database_url, model_path, telegram_api_base_url=fake_bot_api.base_url)
    with TestClient(create_app(settings)) as client:
        yield Service(client, fake_bot_api)


@pytest.fixture
def app_desk(database_url: str, model_path: Path, fake_bot_api: FakeBotApi) -> Iterator[Desk]:
    """An app with seeded staff (API tokens), a VIP and a plain account, both linked chats."""
    yield from seeded_desk(database_url, model_path, fake_bot_api)
