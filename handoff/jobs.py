"""Scheduled jobs that run exactly once per period across every instance.

``run_job`` first inserts a ``job_runs`` row (job, period) in its own transaction; the unique
constraint lets exactly one instance win, the others skip. A job that fails deletes its row
(so that a later attempt can run it) and re-raises.

Jobs:

* ``daily`` (period: the day, ``2026-11-25``): recompute every account's health, keep a
  snapshot and raise the proactive CSM alerts (turned red, usage drop, VIP quiet).
* ``digest`` (period: the ISO week, ``2026-W48``): each CSM's support digest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handoff import digest, signals
from handoff.health import HealthConfig
from handoff.models import Account, JobRun, utcnow

logger = logging.getLogger(__name__)

JOBS = ("daily", "digest")


def period_of(job: str, day: date) -> str:
    """The period a job covers on ``day``: the day itself, or its ISO week for the digest."""
    if job == "digest":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


@dataclass(frozen=True)
class JobOutcome:
    job: str
    period: str
    ran: bool  # False: another instance already ran (or is running) it
    result: str = ""


def daily(session: Session, options: signals.SignalOptions) -> str:
    """Recompute every account's health and raise the alerts that apply."""
    accounts = session.exec(select(Account).order_by(col(Account.id))).all()
    raised = 0
    for account in accounts:
        raised += len(signals.refresh_account(session, account, options).alerts)
    return f"{len(accounts)} account(s) scored, {raised} alert(s)"


def weekly_digest(session: Session, options: signals.SignalOptions, period: str) -> str:
    sent = digest.send_digests(
        session,
        options.health,
        options.today,
        period,
        slack_webhook_url=options.slack_webhook_url,
    )
    return f"{len(sent)} digest(s) queued"


def run_job(
    engine: Engine,
    name: str,
    period: str,
    *,
    health: HealthConfig | None = None,
    today: date | None = None,
    slack_webhook_url: str | None = None,
    after_claim: Callable[[], None] | None = None,
) -> JobOutcome:
    """Run job ``name`` for ``period`` unless some instance already did; exactly once."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r} (known: {', '.join(JOBS)})")
    with Session(engine) as session:
        run = JobRun(job=name, period=period)
        session.add(run)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            logger.info("job %s %s already ran elsewhere: skipped", name, period)
            return JobOutcome(name, period, ran=False)
        run_id = run.id
    if after_claim is not None:
        after_claim()
    options = signals.SignalOptions(
        health or HealthConfig(),
        today or (date.fromisoformat(period) if name == "daily" else utcnow().date()),
        slack_webhook_url,
    )
    try:
        with Session(engine, expire_on_commit=False) as session:
            if name == "daily":
                result = daily(session, options)
            else:
                result = weekly_digest(session, options, period)
            done = session.get(JobRun, run_id)
            assert done is not None
            done.finished_at = utcnow()
            done.result = result[:1000]
            session.add(done)
            session.commit()
    except BaseException:
        with Session(engine) as session:
            failed = session.get(JobRun, run_id)
            if failed is not None:
                session.delete(failed)
                session.commit()
        logger.exception("job %s %s failed; it may run again", name, period)
        raise
    logger.info("job %s %s: %s", name, period, result)
    return JobOutcome(name, period, ran=True, result=result)
