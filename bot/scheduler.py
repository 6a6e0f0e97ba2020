"""The in-app schedulers: the daily job and weekly digest, the clarification sweep and the
assignment sweep.

Every instance runs these loops; ``handoff.jobs.run_job`` makes each (job, period) run exactly
once across all of them, and the sweep closes each unanswered clarification with a guarded
update, so the loops only have to try often enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from handoff import assignment, jobs
from handoff.escalation import AssignmentPolicy
from handoff.health import load_health_config
from handoff.models import utcnow

logger = logging.getLogger(__name__)


class JobScheduler:
    """Checks every ``interval`` seconds (after ``delay``) whether a job is due, and runs it."""

    def __init__(
        self,
        engine: Engine,
        health_path: str,
        slack_webhook_url: str | None = None,
        *,
        interval: float = 600.0,
        delay: float = 60.0,
    ) -> None:
        self._engine = engine
        self._health_path = health_path
        self._slack = slack_webhook_url
        self._interval = interval
        self._delay = delay
        self._stop = asyncio.Event()

    def tick(self) -> list[jobs.JobOutcome]:
        """Run the jobs due now (each at most once per period across instances)."""
        today = utcnow().date()
        health = load_health_config(self._health_path)
        return [
            jobs.run_job(
                self._engine,
                name,
                jobs.period_of(name, today),
                health=health,
                today=today,
                slack_webhook_url=self._slack,
            )
            for name in jobs.JOBS
        ]

    async def run(self) -> None:
        wait = self._delay
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
                return
            except TimeoutError:
                pass
            wait = self._interval
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a failed job is logged and retried at the next tick
                logger.exception("scheduled jobs failed; retrying in %.0f s", self._interval)

    def stop(self) -> None:
        self._stop.set()


class _Sweep:
    """Runs ``tick`` in a thread every ``_interval`` seconds until stopped; a failed round (a
    database hiccup) is logged and the next one tries again."""

    _interval: float
    _stop: asyncio.Event
    what = "a sweep"

    def tick(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a database hiccup: logged, and the next round tries again
                logger.exception("%s failed; retrying", self.what)

    def stop(self) -> None:
        self._stop.set()


class ClarificationSweeper(_Sweep):
    """Hands "did you mean ...?" questions left unanswered for ``timeout`` to a person.

    ``expire`` is ``Triage.expire_clarifications``; it runs every ``interval`` seconds (by
    default a tenth of the timeout, between 1 and 30 s), so a question waits at most about
    ``timeout + interval``.
    """

    what = "the clarification sweep"

    def __init__(
        self,
        expire: Callable[[timedelta], object],
        timeout: timedelta,
        *,
        interval: float | None = None,
    ) -> None:
        self._expire = expire
        self._timeout = timeout
        self._interval = (
            interval if interval is not None else min(30.0, max(1.0, timeout.total_seconds() / 10))
        )
        self._stop = asyncio.Event()

    def tick(self) -> None:
        self._expire(self._timeout)


class AssignmentSweeper(_Sweep):
    """Every ``interval`` seconds: return the handoffs of people away for too long to the
    queue and hand waiting ones to whoever is online (``handoff.assignment.sweep``; each
    change is a guarded transition, so every instance may run it)."""

    what = "the assignment sweep"

    def __init__(
        self,
        engine: Engine,
        policy: Callable[[], AssignmentPolicy],
        *,
        interval: float = 30.0,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._interval = interval
        self._stop = asyncio.Event()

    def tick(self) -> tuple[int, int]:
        return assignment.sweep(self._engine, self._policy())
