"""``triagebot accounts ...`` and ``triagebot users ...``: admin tasks from the shell."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session

from bot.settings import load_settings
from handoff import accounts, contacts, privacy, users
from handoff.db import build_engine
from handoff.errors import TriageError


def add_admin_parsers(sub: argparse._SubParsersAction) -> None:
    acc = sub.add_parser("accounts", help="import accounts")
    acc_sub = acc.add_subparsers(dest="accounts_command", required=True)
    imp = acc_sub.add_parser(
        "import",
        help="import/update accounts from a CSV (all rows or none)",
        description="Columns: " + ", ".join(accounts.COLUMNS) + ", attr_* (custom). "
        "external_id and name are required; dates are YYYY-MM-DD.",
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=_import_accounts)

    usr = sub.add_parser("users", help="staff users and API tokens")
    usr_sub = usr.add_subparsers(dest="users_command", required=True)
    create = usr_sub.add_parser("create", help="create a user (password from $TRIAGEBOT_PASSWORD)")
    create.add_argument("email")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["admin", "agent", "csm"])
    create.set_defaults(func=_create_user)
    token = usr_sub.add_parser("token", help="issue a new API token (printed once)")
    token.add_argument("email")
    token.set_defaults(func=_token)
    link = usr_sub.add_parser(
        "alerts", help="where a CSM receives alerts: Telegram chat id and/or Slack webhook"
    )
    link.add_argument("email")
    link.add_argument("--telegram-chat-id")
    link.add_argument(
        "--slack-webhook-url-env",
        metavar="VAR",
        help="name of an environment variable holding the webhook URL",
    )
    link.set_defaults(func=_alerts)

    con = sub.add_parser("contacts", help="customer contacts: Telegram link tokens")
    con_sub = con.add_subparsers(dest="contacts_command", required=True)
    tok = con_sub.add_parser(
        "link-token",
        help="issue a single-use token tying a Telegram chat to a contact (printed with the "
        "t.me deep link when TELEGRAM_BOT_USERNAME is set)",
    )
    whose = tok.add_mutually_exclusive_group(required=True)
    whose.add_argument("--contact-id", type=int)
    whose.add_argument("--email")
    tok.set_defaults(func=_link_token)

    priv = sub.add_parser("privacy", help="erase a person; apply retention")
    priv_sub = priv.add_subparsers(dest="privacy_command", required=True)
    erase = priv_sub.add_parser("erase", help="erase a contact's personal data everywhere")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact-id", type=int)
    who.add_argument("--email")
    erase.set_defaults(func=_erase)
    keep = priv_sub.add_parser("retention", help="redact conversation content older than N days")
    keep.add_argument("--days", type=int, help="default: RETENTION_DAYS")
    keep.set_defaults(func=_retention)


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database; the engine's connections are closed after."""
    engine = build_engine(load_settings().database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def _import_accounts(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    with _session() as session:
        report = accounts.import_accounts_csv(session, text)
        if report.ok:
            session.commit()
        else:
            session.rollback()
    print(report.format())
    return 0 if report.ok else 1


def _create_user(args: argparse.Namespace) -> int:
    with _session() as session:
        try:
            user = users.create_user(
                session, args.email, args.name, args.role, os.environ.get("TRIAGEBOT_PASSWORD")
            )
        except TriageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        session.commit()
        print(f"created {user.role} {user.email} (id {user.id})")
    return 0


def _token(args: argparse.Namespace) -> int:
    with _session() as session:
        try:
            user = users.by_email(session, args.email)
        except TriageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        token = users.issue_api_token(session, user)
        session.commit()
    print(token)
    return 0


def _alerts(args: argparse.Namespace) -> int:
    with _session() as session:
        try:
            user = users.by_email(session, args.email)
        except TriageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.telegram_chat_id is not None:
            user.telegram_chat_id = args.telegram_chat_id or None
        if args.slack_webhook_url_env:
            user.slack_webhook_url = os.environ.get(args.slack_webhook_url_env) or None
        session.add(user)
        session.commit()
        print(
            f"{user.email}: telegram {'set' if user.telegram_chat_id else 'not set'}, "
            f"slack {'set' if user.slack_webhook_url else 'not set'}"
        )
    return 0


def _link_token(args: argparse.Namespace) -> int:
    from sqlmodel import func, select

    from handoff.models import Contact

    settings = load_settings()
    engine = build_engine(settings.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            contact_id = args.contact_id
            if args.email:
                found = session.exec(
                    select(Contact.id).where(func.lower(Contact.email) == args.email.lower())
                ).first()
                if found is None:
                    print(f"error: no contact with email {args.email}", file=sys.stderr)
                    return 1
                contact_id = found
            try:
                token = contacts.issue_link_token(session, contact_id)
            except TriageError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            session.commit()
    finally:
        engine.dispose()
    link = contacts.telegram_link(settings.telegram_bot_username, token)
    print(
        link
        or f"{token}\n(the customer sends: /start {token}; set TELEGRAM_BOT_USERNAME "
        "for a t.me link)"
    )
    return 0


def _erase(args: argparse.Namespace) -> int:
    from sqlmodel import func, select

    from handoff.models import Contact

    with _session() as session:
        contact_id = args.contact_id
        if args.email:
            contact = session.exec(
                select(Contact).where(func.lower(Contact.email) == args.email.lower())
            ).first()
            if contact is None:
                print(f"error: no contact with email {args.email}", file=sys.stderr)
                return 1
            contact_id = contact.id
        try:
            report = privacy.erase_contact(session, contact_id)
        except TriageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        session.commit()
    print(report.format())
    return 0


def _retention(args: argparse.Namespace) -> int:
    days = args.days if args.days is not None else load_settings().retention_days
    if days is None:
        print("no retention configured (set RETENTION_DAYS or pass --days)")
        return 0
    with _session() as session:
        report = privacy.apply_retention(session, days)
        session.commit()
    print(
        f"redacted {report.messages} messages, {report.dead_letters} dead letters, "
        f"{report.outbox} outbox payloads older than {days} days"
    )
    return 0
