"""Customer signals in: daily product usage and NPS answers (idempotent), CSV import of usage.

Usage is one row per (account, day): sending the same day again replaces its figures. An NPS
answer is identified by its ``external_id`` (the survey tool's id; derived from account,
date and respondent when absent). Every ingestion recomputes the account's health and raises
the proactive CSM alerts that now apply (``refresh_account``).

CSV columns for ``import_usage_csv`` (header row required; order free; no other column):

    external_id*, date* (YYYY-MM-DD), active_users*, seats*, logins, key_feature_events

Every row is validated first; if any row is rejected nothing is written and the report says
which rows and why (the same contract as ``accounts.import_accounts_csv``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from pydantic import ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from handoff import watch
from handoff.accounts import ImportReport, _explain, get_account
from handoff.errors import InvalidInput
from handoff.health import HealthChange, HealthConfig, recompute_health
from handoff.models import Account, CsAlert, NpsResponse, UsageDaily
from handoff.text import StorableInput

USAGE_COLUMNS = ("external_id", "date", "active_users", "seats", "logins", "key_feature_events")
REQUIRED_USAGE_COLUMNS = ("external_id", "date", "active_users", "seats")
MAX_COUNT = 2**31 - 1  # the columns are 32-bit integers


class UsageIn(StorableInput):
    """One day of product usage for an account."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    active_users: int = Field(ge=0, le=MAX_COUNT)
    seats: int = Field(ge=0, le=MAX_COUNT)
    logins: int = Field(default=0, ge=0, le=MAX_COUNT)
    key_feature_events: int = Field(default=0, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _users_fit_seats(self) -> UsageIn:
        if self.seats and self.active_users > self.seats * 10:
            raise ValueError(
                f"active_users {self.active_users} is implausible for {self.seats} seats"
            )
        return self


class UsageRow(UsageIn):
    external_id: str = Field(min_length=1, max_length=128)
    date: date


class NpsIn(StorableInput):
    """One NPS answer (0-10)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    score: int = Field(ge=0, le=10)
    date: date
    comment: str | None = Field(default=None, max_length=5000)
    respondent: str | None = Field(default=None, max_length=320)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)


@dataclass(frozen=True)
class SignalOptions:
    """What ingestion needs besides the data: the health rules and alert delivery."""

    health: HealthConfig
    today: date
    slack_webhook_url: str | None = None


@dataclass
class Refresh:
    change: HealthChange
    alerts: list[CsAlert]


def refresh_account(session: Session, account: Account, options: SignalOptions) -> Refresh:
    """Recompute the account's health and raise the proactive alerts that now apply."""
    change = recompute_health(session, account, options.health, options.today)
    raised = watch.check_account(
        session,
        account,
        change,
        options.health,
        options.today,
        slack_webhook_url=options.slack_webhook_url,
    )
    return Refresh(change, raised)


def _check_day(day: date, today: date) -> None:
    if day > today:
        raise InvalidInput(f"date {day.isoformat()} is in the future")


def upsert_usage(
    session: Session, account: Account, day: date, data: UsageIn
) -> tuple[UsageDaily, bool]:
    """Create or replace the account's usage of ``day``; returns (row, created). Idempotent."""
    stmt = select(UsageDaily).where(UsageDaily.account_id == account.id, UsageDaily.day == day)
    row = session.exec(stmt).first()
    created = row is None
    if row is None:
        try:
            with session.begin_nested():
                row = UsageDaily(account_id=account.id or 0, day=day, **data.model_dump())
                session.add(row)
        except IntegrityError:  # another request inserted the same day meanwhile
            row = session.exec(stmt).one()
            created = False
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row, created


def record_usage(
    session: Session, external_id: str, day: date, data: UsageIn, options: SignalOptions
) -> tuple[UsageDaily, Refresh]:
    """Store a day of usage for the account ``external_id`` and refresh its health."""
    _check_day(day, options.today)
    account = get_account(session, external_id)
    row, _created = upsert_usage(session, account, day, data)
    return row, refresh_account(session, account, options)


def record_nps(
    session: Session, external_id: str, data: NpsIn, options: SignalOptions
) -> tuple[NpsResponse, Refresh]:
    """Store an NPS answer (the same ``external_id`` twice updates it) and refresh health."""
    _check_day(data.date, options.today)
    account = get_account(session, external_id)
    answer_id = (
        data.external_id or f"{external_id}:{data.date.isoformat()}:{data.respondent or '-'}"
    )
    row = session.exec(select(NpsResponse).where(NpsResponse.external_id == answer_id)).first()
    if row is None:
        row = NpsResponse(
            external_id=answer_id,
            account_id=account.id or 0,
            score=data.score,
            responded_on=data.date,
        )
    elif row.account_id != account.id:
        raise InvalidInput(f"NPS answer {answer_id} belongs to another account")
    row.score, row.responded_on = data.score, data.date
    row.comment, row.contact_email = data.comment, data.respondent
    session.add(row)
    session.flush()
    return row, refresh_account(session, account, options)


def import_usage_csv(session: Session, text: str, options: SignalOptions) -> ImportReport:
    """Validate every row, then upsert all of them — or none when any row is rejected.

    Health is recomputed once per imported account. The caller commits when ``report.ok``
    (and rolls back otherwise). Text the csv module cannot parse is ``InvalidInput``.
    """
    try:
        return _import_usage_rows(session, text, options)
    except csv.Error as exc:  # raised while reading, so before anything is written
        raise InvalidInput(f"not valid CSV: {exc}") from exc


def _import_usage_rows(session: Session, text: str, options: SignalOptions) -> ImportReport:
    report = ImportReport()
    # newline="": the csv module handles \r, \n and \r\n line ends (and newlines in quotes)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_USAGE_COLUMNS if c not in header]
    unknown = [h for h in header if h not in USAGE_COLUMNS]
    if missing or unknown:
        why = []
        if missing:
            why.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            why.append(f"unknown column(s) {', '.join(unknown)}")
        report.rejected.append((1, "; ".join(why)))
        return report
    rows: list[tuple[Account, UsageRow]] = []
    seen: dict[tuple[str, date], int] = {}
    accounts: dict[str, Account | None] = {}
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            report.rejected.append((line, "more values than columns"))
            continue
        fields = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        try:
            item = UsageRow.model_validate({k: v for k, v in fields.items() if v != ""})
        except ValidationError as exc:
            report.rejected.append((line, _explain(exc)))
            continue
        if item.date > options.today:
            report.rejected.append((line, f"date {item.date.isoformat()} is in the future"))
            continue
        key = (item.external_id, item.date)
        if key in seen:
            report.rejected.append(
                (line, f"{item.external_id} {item.date.isoformat()} repeats line {seen[key]}")
            )
            continue
        seen[key] = line
        if item.external_id not in accounts:
            accounts[item.external_id] = session.exec(
                select(Account).where(Account.external_id == item.external_id)
            ).first()
        account = accounts[item.external_id]
        if account is None:
            report.rejected.append((line, f"no account with external_id {item.external_id}"))
            continue
        rows.append((account, item))
    if report.rejected:
        return report
    for account, item in rows:
        data = UsageIn(**item.model_dump(exclude={"external_id", "date"}))
        _row, created = upsert_usage(session, account, item.date, data)
        if created:
            report.created += 1
        else:
            report.updated += 1
    for account in {a.id: a for a, _ in rows}.values():
        refresh_account(session, account, options)
    return report
