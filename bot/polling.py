"""Telegram long polling: the webhook's pipeline, for a machine without a public HTTPS URL.

:func:`poll_once` fetches one batch with ``getUpdates`` and hands every update to the same
pipeline the webhook uses (:func:`bot.channels.telegram.parse_update`, then
``Triage.receive``; malformed and message-less updates are kept with
``Triage.store_unhandled``). The offset only moves past an update once that update is
committed, so a crash re-fetches it and the unique delivery id turns the re-fetch into a no-op.

:class:`TelegramPoller` runs that in a loop next to the outbox worker (which sends the
replies), retries network failures with backoff, re-fetches after a pause when the database
is unreachable, and stops cleanly when asked.

Updates are fetched as raw JSON (``BaseRequest.post`` with the parameters in the query string,
which the Bot API accepts) rather than through ``Bot.get_updates``: that method parses the
whole batch at once, so one update it cannot parse would fail every call and wedge the loop,
whereas here each update is parsed, and dead-lettered if need be, on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy.exc import OperationalError
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TelegramError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential_jitter

from bot.channels import telegram, telegram_shape
from bot.triage import Triage

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
LONG_POLL_SECONDS = 25

T = TypeVar("T")


class WebhookActive(Exception):
    """Telegram has a webhook set for this bot, so getUpdates would be refused."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"a webhook is set for this bot ({url}); Telegram refuses getUpdates while it is. "
            "Run 'triagebot telegram delete-webhook' first (pending updates are kept)."
        )
        self.url = url


async def fetch_updates(bot: Bot, offset: int | None, poll_seconds: int) -> list[Any]:
    """One ``getUpdates`` call; returns the raw updates (JSON objects, unparsed).

    Raises PTB's ``TelegramError`` family: ``NetworkError``/``TimedOut`` (transient),
    ``RetryAfter``, ``Conflict`` (a webhook or another poller is active), ``InvalidToken``.
    """
    params: dict[str, Any] = {
        "timeout": poll_seconds,
        "allowed_updates": json.dumps(list(ALLOWED_UPDATES)),
    }
    if offset is not None:
        params["offset"] = offset
    result = await bot.request.post(
        f"{bot.base_url}/getUpdates?{urlencode(params)}", read_timeout=poll_seconds + 10
    )
    if not isinstance(result, list):
        raise TelegramError(f"getUpdates returned {type(result).__name__}, expected a list")
    return result


def ingest_update(triage: Triage, data: object, bot: Bot | None) -> str:
    """Store one raw update exactly as the webhook does; returns what happened to it."""
    body = json.dumps(data, ensure_ascii=False, default=str)
    update_id = data.get("update_id") if isinstance(data, dict) else None
    try:
        inbound = telegram_shape.parse_checked(data, bot)
    except ValueError as exc:
        triage.store_unhandled(
            telegram.CHANNEL,
            str(update_id) if isinstance(update_id, int) else None,
            "dead",
            str(exc),
            body,
        )
        logger.warning("telegram: dead-lettered a malformed update (%s)", type(exc).__name__)
        return "dead_letter"
    if inbound is None:
        triage.store_unhandled(
            telegram.CHANNEL, str(update_id), "ignored", "update type without a message", body
        )
        return "ignored"
    result = triage.receive(inbound)
    return "duplicate" if result.duplicate else result.action


async def process_updates(
    services: Services, bot: Bot, updates: Sequence[Any], offset: int | None
) -> int | None:
    """Ingest ``updates`` in order; returns the offset that confirms those committed."""
    for data in updates:
        await asyncio.to_thread(ingest_update, services.triage, data, bot)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if isinstance(update_id, int) and (offset is None or update_id >= offset):
            offset = update_id + 1  # only now: the update above is committed
    return offset


async def poll_once(
    services: Services, bot: Bot, offset: int | None, *, poll_seconds: int = LONG_POLL_SECONDS
) -> int | None:
    """Fetch one batch (waiting up to ``poll_seconds`` for one) and ingest it.

    Returns the offset for the next call: the last committed ``update_id`` + 1, or ``offset``
    unchanged when nothing arrived.
    """
    updates = await fetch_updates(bot, offset, poll_seconds)
    return await process_updates(services, bot, updates, offset)


async def ensure_no_webhook(bot: Bot) -> None:
    """Raise :class:`WebhookActive` when Telegram has a webhook set for this bot."""
    info = await bot.get_webhook_info()
    if info.url:
        raise WebhookActive(info.url)


class TelegramPoller:
    """Long-polls Telegram and runs the outbox worker (and the clarification sweep) until
    ``stop`` is set."""

    def __init__(
        self,
        services: Services,
        bot: Bot,
        *,
        poll_seconds: int = LONG_POLL_SECONDS,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        db_retry_seconds: float = 5.0,
    ) -> None:
        self.services = services
        self.bot = bot
        self.poll_seconds = poll_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.db_retry_seconds = db_retry_seconds
        self.offset: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and deliver until ``stop`` is set; refuses to start while a webhook is set."""
        await ensure_no_webhook(self.bot)
        worker = self.services.worker
        worker_task = asyncio.create_task(worker.run())
        sweeper = self.services.sweeper
        sweep_task = asyncio.create_task(sweeper.run()) if sweeper is not None else None
        logger.info("telegram: polling for updates (webhook not set)")
        try:
            while not stop.is_set():
                fetched = await _until(self._fetch_with_retry(), stop)
                if fetched is None:
                    break
                try:
                    self.offset = await process_updates(
                        self.services, self.bot, fetched, self.offset
                    )
                except OperationalError:  # database down: offset kept, batch re-fetched
                    logger.exception("telegram: database unavailable; re-fetching shortly")
                    await _until(asyncio.sleep(self.db_retry_seconds), stop)
        finally:
            worker.stop()
            if sweeper is not None:
                sweeper.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(worker_task, timeout=10)
            if sweep_task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(sweep_task, timeout=10)
        logger.info("telegram: polling stopped")

    async def _fetch_with_retry(self) -> list[Any]:
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryAfter):
                delay = exc.retry_after
                return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            return float(backoff(state))

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "telegram: getUpdates failed (%s: %s); retrying in %.1fs",
                type(exc).__name__,
                exc,
                state.upcoming_sleep,
            )

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((NetworkError, RetryAfter)),
            wait=wait,
            before_sleep=log_retry,
            reraise=True,
        ):
            with attempt:
                return await fetch_updates(self.bot, self.offset, self.poll_seconds)
        raise AssertionError("unreachable: AsyncRetrying either returns or re-raises")


async def _until(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """Await ``work`` unless ``stop`` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
