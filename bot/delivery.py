"""The outbox worker: delivers queued messages through their channel's sender.

Runs as a background task of the app (one per instance; several instances share the work
safely). It wakes at once when a webhook commits new entries and polls otherwise, so retries
scheduled by rate limits and entries left by a crashed instance are picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from bot.channels.base import (
    Button,
    OutboundMessage,
    OutboundSender,
    PermanentError,
    RetryLater,
    SendResult,
    TemplateMessage,
    Unreachable,
)
from handoff import contacts, outbox
from handoff.db import write_lock
from handoff.models import OutboxEntry

logger = logging.getLogger(__name__)

# How long a worker keeps trying to record an accepted send while the database is away; well
# inside outbox.LEASE, so no other worker claims the entry again meanwhile.
RECORD_PATIENCE = 30.0


class OutboxWorker:
    """Claims due outbox entries and sends them; one entry per chat at a time, in order."""

    def __init__(
        self,
        engine: Engine,
        senders: Mapping[str, Any],
        *,
        retry: outbox.RetryPolicy | None = None,
        poll_seconds: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._engine = engine
        self._senders = dict(senders)
        self._retry = retry or outbox.RetryPolicy()
        self._poll = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def wake(self) -> None:
        """Ask the worker to look for work now (safe to call from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Deliver until stopped."""
        self._loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                handled = await self.run_once()
            except Exception:  # a DB outage must not kill the worker: log, wait, retry
                logger.exception("outbox worker cycle failed; retrying")
                handled = 0
            if handled:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def run_once(self) -> int:
        """Claim and deliver one batch; returns how many entries were handled."""
        entries = await asyncio.to_thread(self._claim)
        if not entries:
            return 0
        await asyncio.gather(*(self._deliver(entry) for entry in entries))
        return len(entries)

    def _claim(self) -> list[OutboxEntry]:
        with write_lock(self._engine), Session(self._engine, expire_on_commit=False) as session:
            return outbox.claim_due(session, limit=self._batch)

    async def _deliver(self, entry: OutboxEntry) -> None:
        sender = self._senders.get(entry.channel)
        try:
            if sender is None:
                raise RetryLater(f"no sender configured for channel {entry.channel!r}", 60.0)
            result = await _send(sender, entry)
        except RetryLater as exc:
            await asyncio.to_thread(self._record_retry, entry, str(exc), exc.delay)
        except Unreachable as exc:
            await asyncio.to_thread(self._record_unreachable, entry, str(exc))
        except PermanentError as exc:
            await asyncio.to_thread(self._record_dead, entry, str(exc))
        except Exception as exc:  # a sender bug must not stall the batch: retry with backoff
            logger.exception(
                "outbox entry %s: unexpected error from the %s sender", entry.id, entry.channel
            )
            await asyncio.to_thread(
                self._record_retry, entry, f"unexpected {type(exc).__name__}", None
            )
        else:
            await self._record_delivered(entry, result)

    async def _record_delivered(self, entry: OutboxEntry, result: SendResult) -> None:
        """Record a send the provider accepted, retrying while the database is unreachable.

        Until this commits, the delivery is known only in memory: giving up at the first
        error (a PostgreSQL restart, a failover) would leave the entry ``sending`` until its
        lease expires, and the customer would then get the message twice.
        """
        delay = 0.1
        deadline = time.monotonic() + RECORD_PATIENCE
        while True:
            try:
                await asyncio.to_thread(self._record_sent, entry, result)
                return
            except OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning("outbox entry %s sent; recording it failed, retrying", entry.id)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    def _record_sent(self, entry: OutboxEntry, result: SendResult) -> None:
        with write_lock(self._engine), Session(self._engine) as session:
            outbox.mark_sent(session, entry.id or 0, result.provider_message_id)
            session.commit()

    def _record_retry(self, entry: OutboxEntry, error: str, delay: float | None) -> None:
        with write_lock(self._engine), Session(self._engine) as session:
            outbox.mark_retry(session, entry, error, delay=delay, policy=self._retry)
            session.commit()

    def _record_dead(self, entry: OutboxEntry, error: str) -> None:
        with write_lock(self._engine), Session(self._engine) as session:
            outbox.mark_dead(session, entry.id or 0, error)
            session.commit()

    def _record_unreachable(self, entry: OutboxEntry, error: str) -> None:
        with write_lock(self._engine), Session(self._engine) as session:
            outbox.mark_dead(session, entry.id or 0, error)
            if entry.kind == "customer_message":
                contacts.mark_unreachable(session, entry.channel, entry.target)
            session.commit()


async def _send(sender: OutboundSender, entry: OutboxEntry) -> SendResult:
    payload = entry.payload
    if entry.kind == "callback_ack":
        acknowledge = getattr(sender, "acknowledge", None)
        if acknowledge is not None:
            await acknowledge(payload["callback_id"])
        return SendResult()
    buttons = tuple(Button(b["text"], b["data"]) for b in payload.get("buttons", []))
    found = payload.get("template")
    template = (
        TemplateMessage(found["name"], found["language"], tuple(found.get("parameters", [])))
        if found
        else None
    )
    message = OutboundMessage(text=payload["text"], buttons=buttons, template=template)
    return await sender.send(entry.target, message)
