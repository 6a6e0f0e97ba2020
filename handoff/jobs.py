"""Scheduled jobs that run exactly once per period across every instance.

``run_job`` first inserts a ``job_runs`` row (job, period) in its own transaction; the unique
constraint lets exactly one instance win, the others skip. A job that fails deletes its row
(so that a later attempt can run it) and re-raises. A run that never finished because its
process died (SIGKILL, a lost machine) is taken over once it is older than ``STALE_AFTER``,
by a guarded update that only one instance can win; both jobs are safe to run again (health
snapshots are per day, alerts and digests carry dedupe keys).

Jobs:

* ``daily`` (period: the day, ``2026-11-25``): recompute every account's health, keep a
  snapshot and raise the proactive CSM alerts (turned red, usage drop, VIP quiet).
* ``digest`` (period: the ISO week, ``2026-W48``): each CSM's support digest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handoff import digest, signals
from handoff.errors import Conflict
from handoff.health import HealthConfig
from handoff.models import Account, JobRun, utcnow

logger = logging.getLogger(__name__)

JOBS = ("daily", "digest")
# An unfinished run older than this is presumed dead and may be taken over.
STALE_AFTER = timedelta(minutes=30)


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
            run_id = _take_over_stale(session, name, period)
            if run_id is None:
                logger.info("job %s %s already ran elsewhere: skipped", name, period)
                return JobOutcome(name, period, ran=False)
            logger.warning("job %s %s: taking over a run that never finished", name, period)
        else:
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
            if done is None:
                raise Conflict(f"job run {run_id} ({name} {period}) vanished before it finished")
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


def _take_over_stale(session: Session, name: str, period: str) -> int | None:
    """Claim the (job, period) run if it started long ago and never finished; its id or None."""
    now = utcnow()
    row = session.exec(
        select(JobRun).where(JobRun.job == name).where(JobRun.period == period)
    ).first()
    if row is None or row.finished_at is not None or row.started_at > now - STALE_AFTER:
        return None
    claimed = session.exec(
        update(JobRun)
        .where(col(JobRun.id) == row.id)
        .where(col(JobRun.finished_at).is_(None))
        .where(col(JobRun.started_at) == row.started_at)
        .values(started_at=now)
    )
    session.commit()
    return row.id if claimed.rowcount == 1 else None
