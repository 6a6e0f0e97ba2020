"""The CSM's accounts page in Chromium: why a new account has no health yet, and alert
bodies that can be read in full (issue 14, items 12 and 13)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.app import create_app
from handoff import accounts
from handoff.models import CsAlert, User
from tests.browser.test_console_browser import (  # noqa: F401
    AppServer,
    Site,
    _login,
    browser,
    site,
)
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeBotApi
from tests.integration.test_console import seed

pytestmark = pytest.mark.browser

LONG_BODY = "\n".join(
    ["Usage is falling (active users -50% in the last 7 days vs the 21 before); health 45."]
    + [f"• reason number {n} with enough words to fill a line of the alert" for n in range(6)]
    + ["Based on: usage data on 7 of the last 7 days and 21 of the 21 before."]
)


def _csm_id(app: Site) -> int:
    with Session(app.engine) as s:
        return s.exec(select(User.id).where(User.email == "csm@t.test")).one() or 0


def test_a_new_account_says_on_its_card_why_its_health_is_unknown(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    with Session(site.engine) as s:
        data = accounts.AccountIn(
            external_id="NEW-1", name="Newco", tier="smb", csm_email="csm@t.test"
        )
        accounts.upsert_account(s, data)
        s.commit()
    context, page, _dialogs = _login(browser, site, "csm")
    page.goto(f"{site.url}/console/accounts")
    row = page.locator("#accounts-table tr", has_text="Newco")
    expect(row).to_contain_text("unknown")
    expect(row).to_contain_text("no usage data yet")
    context.close()


def test_a_long_alert_body_can_be_expanded_to_its_last_line(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    with Session(site.engine) as s:
        s.add(
            CsAlert(csm_id=_csm_id(site), kind="usage_drop", title="Initech: usage", body=LONG_BODY)
        )
        s.commit()
    context, page, _dialogs = _login(browser, site, "csm")
    page.goto(f"{site.url}/console/accounts")
    alert = page.locator("#cs-alerts li", has_text="Initech: usage")
    last = alert.get_by_text("Based on: usage data on 7 of the last 7 days", exact=False)
    expect(alert).to_contain_text("active users -50%")
    expect(last).to_be_hidden()
    alert.locator("summary").click()
    expect(last).to_be_visible()
    box = last.bounding_box()
    body = alert.locator(".alert__text").bounding_box()
    assert box is not None and body is not None
    assert box["y"] + box["height"] <= body["y"] + body["height"] + 1  # not clipped
    context.close()


@pytest.fixture
def admin_site(
    tmp_path: Path, sqlite_template: Path, model_path: Path, fake_bot_api: FakeBotApi
) -> Iterator[Site]:
    """The app with its own copy of the model, which a retrain may overwrite."""
    db = tmp_path / "admin.db"
    shutil.copy(sqlite_template, db)
    own_model = tmp_path / "model" / model_path.name
    own_model.parent.mkdir()
    for file in model_path.parent.iterdir():
        shutil.copy(file, own_model.parent / file.name)
    settings = make_settings(
        f"sqlite:///{db}", own_model, telegram_api_base_url=fake_bot_api.base_url
    )
    app = create_app(settings)
    seed(app.state.services.engine)
    with AppServer(app) as server:
        yield Site(server, fake_bot_api, app.state.services.engine)


def test_retrain_shows_progress_then_its_result_without_a_reload(
    browser: Any,  # noqa: F811
    admin_site: Site,
) -> None:
    from playwright.sync_api import expect

    context, page, dialogs = _login(browser, admin_site, "admin")
    page.goto(f"{admin_site.url}/console/admin#model")
    page.click("#retrain")
    expect(page.locator("#model-status")).to_contain_text("training…")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#model-result")).to_contain_text("finished", timeout=120_000)
    expect(page.locator("#model-result")).to_contain_text("CV accuracy")
    expect(page.locator("#retrain")).to_be_enabled()
    assert page.evaluate("window.__sameDocument === true")  # no reload happened
    assert dialogs == []
    context.close()
