"""The in-app scheduler: every few minutes, run today's daily job and this week's digest.

Every instance runs this loop; ``handoff.jobs.run_job`` makes each (job, period) run exactly
once across all of them, so the loop only has to try often enough.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from handoff import jobs
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
