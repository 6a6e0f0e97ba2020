"""Accounts and contacts: validated upserts by external id, and all-or-nothing CSV import.

CSV columns (header row required; order free; unknown columns starting with ``attr_`` become
custom attributes, other unknown columns are rejected):

    external_id*, name*, plan, tier, arr, renewal_date (YYYY-MM-DD), next_qbr_date (YYYY-MM-DD),
    expansion_stage, csm_email

``tier`` is one of ``TIERS`` (any case; stored lowercase) or empty.

Every row is validated first; if any row is rejected nothing is written and the report says
which rows and why.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, func, select

from handoff.errors import InvalidInput, NotFound
from handoff.health import UNSCORED
from handoff.models import Account, Contact, Role, User, utcnow
from handoff.text import StorableInput

COLUMNS = (
    "external_id",
    "name",
    "plan",
    "tier",
    "arr",
    "renewal_date",
    "next_qbr_date",
    "expansion_stage",
    "csm_email",
)

TIERS = ("strategic", "enterprise", "mid-market", "smb")


class AccountIn(StorableInput):
    """An account as a CRM describes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=300)
    plan: str | None = Field(default=None, max_length=100)
    tier: str | None = Field(default=None, max_length=50)
    arr: float | None = Field(default=None, ge=0)
    renewal_date: date | None = None
    next_qbr_date: date | None = None
    expansion_stage: str | None = Field(default=None, max_length=100)
    csm_email: str | None = Field(default=None, max_length=320)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("plan", "tier", "expansion_stage", "csm_email", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in TIERS:
            raise ValueError(f"tier {value!r} is not one of {', '.join(TIERS)}")
        return value.lower()


class ContactIn(StorableInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str | None = Field(default=None, max_length=300)
    account_external_id: str | None = Field(default=None, max_length=128)


def _csm_id(session: Session, email: str | None) -> int | None:
    if email is None:
        return None
    user = session.exec(select(User).where(func.lower(User.email) == email.lower())).first()
    if user is None or user.role not in (Role.csm.value, Role.admin.value):
        raise InvalidInput(f"no CSM with email {email}")
    return user.id


def upsert_account(session: Session, data: AccountIn) -> tuple[Account, bool]:
    """Create or update the account with ``data.external_id``; returns (account, created).

    Idempotent: the same input twice leaves the same row. Health figures are ours (computed),
    never overwritten by a sync.
    """
    csm_id = _csm_id(session, data.csm_email)
    account = session.exec(select(Account).where(Account.external_id == data.external_id)).first()
    created = account is None
    if account is None:
        account = Account(external_id=data.external_id, name=data.name)
    account.name = data.name
    account.plan = data.plan
    account.tier = data.tier
    account.arr = data.arr
    account.renewal_date = data.renewal_date
    account.next_qbr_date = data.next_qbr_date
    account.expansion_stage = data.expansion_stage
    account.csm_id = csm_id
    # keep our own keys (health factors...), replace the CRM's custom attributes
    ours = {k: v for k, v in (account.attributes or {}).items() if k.startswith("health")}
    if account.health_score is None:  # say why on every card until it is scored
        ours.setdefault("health_factors", [UNSCORED])
    account.attributes = {**data.attributes, **ours}
    account.updated_at = utcnow()
    session.add(account)
    session.flush()
    return account, created


def get_account(session: Session, external_id: str) -> Account:
    account = session.exec(select(Account).where(Account.external_id == external_id)).first()
    if account is None:
        raise NotFound(f"account {external_id} not found")
    return account


def upsert_contact(session: Session, data: ContactIn) -> tuple[Contact, bool]:
    email = str(data.email).lower()
    account_id = None
    if data.account_external_id:
        account_id = get_account(session, data.account_external_id).id
    contact = session.exec(select(Contact).where(func.lower(Contact.email) == email)).first()
    created = contact is None
    if contact is None:
        contact = Contact(email=email)
    contact.email = email
    if data.name is not None:
        contact.name = data.name
    contact.account_id = account_id
    session.add(contact)
    session.flush()
    return contact, created


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def format(self) -> str:
        if self.rejected:
            lines = [f"nothing imported: {len(self.rejected)} row(s) rejected"]
            lines += [
                f"  {f'line {line}' if line else 'file'}: {why}" for line, why in self.rejected
            ]
            return "\n".join(lines)
        return f"imported: {self.created} created, {self.updated} updated"


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}" for err in exc.errors()
    )


def import_accounts_csv(session: Session, text: str) -> ImportReport:
    """Validate every row, then upsert all of them — or none when any row is rejected.

    The caller commits when ``report.ok`` (and rolls back otherwise). Text the csv module
    cannot parse (an unclosed quote, a field over its size limit) is a rejected line too.
    """
    try:
        return _import_account_rows(session, text)
    except csv.Error as exc:  # raised while reading, so before anything is written
        report = ImportReport()
        report.rejected.append((0, f"not valid CSV: {exc}"))
        return report


def _import_account_rows(session: Session, text: str) -> ImportReport:
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("external_id", "name") if c not in header]
    unknown = [h for h in header if h not in COLUMNS and not h.startswith("attr_")]
    if missing or unknown:
        why = []
        if missing:
            why.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            why.append(f"unknown column(s) {', '.join(unknown)} (custom ones start with attr_)")
        report.rejected.append((1, "; ".join(why)))
        return report
    rows: list[tuple[int, AccountIn]] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            report.rejected.append((line, "more values than columns"))
            continue
        attributes = {k[5:]: v for k, v in row.items() if k.startswith("attr_") and v}
        fields: dict[str, Any] = {k: v for k, v in row.items() if k in COLUMNS and v != ""}
        try:
            item = AccountIn(**fields, attributes=attributes)
        except ValidationError as exc:
            report.rejected.append((line, _explain(exc)))
            continue
        if item.external_id in seen:
            report.rejected.append(
                (line, f"external_id {item.external_id} repeats line {seen[item.external_id]}")
            )
            continue
        seen[item.external_id] = line
        try:
            _csm_id(session, item.csm_email)
        except InvalidInput as exc:
            report.rejected.append((line, str(exc)))
            continue
        rows.append((line, item))
    if report.rejected:
        return report
    for _line, item in rows:
        _account, created = upsert_account(session, item)
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report
