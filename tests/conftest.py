"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable), the trained FAQ
model, the fake Bot API server and a running app."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.settings import ROOT, Settings
from handoff.migrate import upgrade
from tests.fakes.telegram_api import FakeBotApi, start_fake_bot_api

PG_ADMIN_URL = os.environ.get(
    "TRIAGEBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BOT_TOKEN = "123456789:AAHtestTOKENtestTOKENtestTOKEN12345"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except OperationalError:
        return False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"triagebot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


TABLES = (
    "handoff_viewers",
    "agent_presence",
    "canned_reply_uses",
    "canned_replies",
    "corrections",
    "suggestions",
    "prompts",
    "staff_sessions",
    "outbox",
    "handoff_events",
    "feedback",
    "cs_alerts",
    "handoffs",
    "messages",
    "conversations",
    "channel_identities",
    "contacts",
    "usage_daily",
    "nps_responses",
    "health_snapshots",
    "accounts",
    "users",
    "inbound_events",
    "job_runs",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each integration test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "triagebot.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled FAQ model, trained once per test session."""
    from classifier import train_faq_model

    path = tmp_path_factory.mktemp("model") / "faq-tfidf.joblib"
    train_faq_model(ROOT / "data" / "faq", path, backend="tfidf")
    return path


@pytest.fixture(scope="session")
def fake_bot_api_server() -> Iterator[FakeBotApi]:
    fake, server = start_fake_bot_api()
    yield fake
    server.__exit__(None, None, None)


@pytest.fixture
def fake_bot_api(fake_bot_api_server: FakeBotApi) -> FakeBotApi:
    fake_bot_api_server.reset()
    return fake_bot_api_server


def make_settings(database_url: str, model_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: explicit values only, never a developer's .env."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "model_path": model_path,
        "model_backend": "tfidf",  # the session's model (light: no encoder in the suite)
        "telegram_bot_token": BOT_TOKEN,
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "outbox_poll_seconds": 0.05,
    }
    values.update(overrides)
    if "hours_path" not in values:  # an API or admin edit must never touch data/hours.yaml
        copy = Path(tempfile.mkdtemp(prefix="triagebot-hours-")) / "hours.yaml"
        shutil.copy(ROOT / "data" / "hours.yaml", copy)
        values["hours_path"] = copy
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
