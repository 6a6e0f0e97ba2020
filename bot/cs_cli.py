"""``triagebot usage import`` and ``triagebot jobs run``: CS tasks from the shell."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sqlmodel import Session

from bot.settings import load_settings
from handoff import jobs, signals
from handoff.db import build_engine
from handoff.health import load_health_config
from handoff.models import utcnow


def add_cs_parsers(sub: argparse._SubParsersAction) -> None:
    usage = sub.add_parser("usage", help="product usage signals")
    usage_sub = usage.add_subparsers(dest="usage_command", required=True)
    imp = usage_sub.add_parser(
        "import",
        help="import daily usage from a CSV (all rows or none); recomputes health",
        description="Columns: " + ", ".join(signals.USAGE_COLUMNS) + ". "
        "external_id, date (YYYY-MM-DD), active_users and seats are required.",
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=_import_usage)

    job = sub.add_parser("jobs", help="scheduled Customer Success jobs (exactly once per period)")
    job_sub = job.add_subparsers(dest="jobs_command", required=True)
    run = job_sub.add_parser("run", help="run a job now unless it already ran for its period")
    run.add_argument("name", choices=jobs.JOBS)
    run.add_argument(
        "--date", type=date.fromisoformat, help="the day (YYYY-MM-DD; default: today, UTC)"
    )
    run.set_defaults(func=_run_job)


def _slack(settings: object) -> str | None:
    secret = getattr(settings, "slack_webhook_url", None)
    return secret.get_secret_value() if secret is not None else None


def _import_usage(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()
    options = signals.SignalOptions(
        load_health_config(settings.health_path), utcnow().date(), _slack(settings)
    )
    engine = build_engine(settings.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            report = signals.import_usage_csv(session, text, options)
            if report.ok:
                session.commit()
            else:
                session.rollback()
    finally:
        engine.dispose()
    print(report.format())
    return 0 if report.ok else 1


def _run_job(args: argparse.Namespace) -> int:
    settings = load_settings()
    day = args.date or utcnow().date()
    engine = build_engine(settings.database_url)
    try:
        outcome = jobs.run_job(
            engine,
            args.name,
            jobs.period_of(args.name, day),
            health=load_health_config(settings.health_path),
            today=day,
            slack_webhook_url=_slack(settings),
        )
    finally:
        engine.dispose()
    if outcome.ran:
        print(f"{outcome.job} {outcome.period}: {outcome.result}")
    else:
        print(f"{outcome.job} {outcome.period}: already ran (skipped)")
    return 0
