"""`triagebot accounts import FILE`: every row validated first, a report per rejected line,
nothing half-imported, re-imports update in place (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot.cli import main
from handoff import users
from handoff.db import build_engine
from handoff.models import Account, Role

HEADER = (
    "external_id,name,plan,tier,arr,renewal_date,next_qbr_date,expansion_stage,csm_email,"
    "attr_region\n"
)
ACME = "ACME-1,Acme,Enterprise,enterprise,120000,2027-01-31,2026-12-10,proposal,cora@cs.test,EU\n"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no developer .env is read
    engine = build_engine(database_url)
    with Session(engine) as s:
        users.create_user(s, "cora@cs.test", "Cora CSM", Role.csm, "a-long-password-1")
        s.commit()

    def run(csv_text: str) -> int:
        path = tmp_path / "accounts.csv"
        path.write_text(csv_text, encoding="utf-8")
        return main(["accounts", "import", str(path)])

    yield run, engine
    engine.dispose()


def accounts_in(engine) -> dict[str, Account]:
    with Session(engine) as s:
        return {a.external_id: a for a in s.exec(select(Account).order_by(col(Account.id)))}


def test_one_bad_row_imports_nothing_and_each_rejection_names_its_line(cli, capsys) -> None:
    run, engine = cli
    status = run(
        HEADER
        + ACME
        + "BAD-1,Bad Dates,Pro,,abc,2027-13-45,,,,\n"
        + "NOCSM-1,Nobody,Pro,,100,,,,ghost@cs.test,\n"
        + "ACME-1,Acme again,Pro,,,,,,,\n"
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "nothing imported: 3 row(s) rejected" in out
    assert "line 3: arr:" in out and "renewal_date" in out
    assert "line 4:" in out and "ghost@cs.test" in out
    assert "line 5: external_id ACME-1 repeats line 2" in out
    assert accounts_in(engine) == {}


def test_a_clean_file_is_imported_and_a_second_import_updates_in_place(cli, capsys) -> None:
    run, engine = cli
    good = HEADER + ACME + "SMALL-1,Small Co,Starter,,1200,,,,,\n"
    assert run(good) == 0
    assert "imported: 2 created, 0 updated" in capsys.readouterr().out
    first = accounts_in(engine)
    acme = first["ACME-1"]
    assert (acme.name, acme.tier, acme.arr) == ("Acme", "enterprise", 120000)
    assert (acme.renewal_date, acme.next_qbr_date) == (date(2027, 1, 31), date(2026, 12, 10))
    assert acme.csm_id is not None and acme.attributes.get("region") == "EU"

    assert run(good.replace("120000", "150000")) == 0
    assert "imported: 0 created, 2 updated" in capsys.readouterr().out
    again = accounts_in(engine)
    assert set(again) == {"ACME-1", "SMALL-1"}
    assert again["ACME-1"].id == acme.id and again["ACME-1"].arr == 150000


def test_text_the_csv_module_cannot_read_is_reported_not_a_traceback(cli, capsys) -> None:
    run, engine = cli
    huge = "x" * 200_000  # over the csv module's field size limit
    status = run(HEADER + f'ACME-1,"{huge}",Pro,,,,,,,\n')
    out = capsys.readouterr().out
    assert status == 1
    assert "file: not valid CSV" in out
    assert accounts_in(engine) == {}


def test_unknown_or_missing_columns_are_refused_before_any_row(cli, capsys) -> None:
    run, engine = cli
    assert run("id,title\n1,Acme\n") == 1
    out = capsys.readouterr().out
    assert "missing column(s) external_id, name" in out
    assert "unknown column(s) id, title" in out
    assert accounts_in(engine) == {}


def test_an_unknown_tier_is_rejected_naming_the_allowed_tiers(cli, capsys) -> None:
    run, engine = cli
    status = run(HEADER + "GAL-1,Galactic,Pro,galactic,100,,,,,\n")
    out = capsys.readouterr().out
    assert status == 1
    assert "line 2:" in out and "tier 'galactic' is not one of strategic, enterprise" in out
    assert accounts_in(engine) == {}


def test_a_tier_in_capitals_is_stored_lowercase(cli, capsys) -> None:
    run, engine = cli
    assert run(HEADER + "MID-1,Mid Co,Pro,Mid-Market,100,,,,,\n") == 0
    assert accounts_in(engine)["MID-1"].tier == "mid-market"
