"""The durable outbox: messages to deliver, committed in the same transaction as their cause.

A worker claims due entries, sends them, and records the result. Guarantees:

* Nothing is lost: an entry stays ``pending`` until a send succeeds or it is dead-lettered
  after ``max_attempts``; an entry claimed by a worker that died (its lease expired) is
  claimed again after restart.
* Order per chat: an entry is only claimable when no earlier entry with the same
  ``ordering_key`` is still pending or being sent.
* Idempotent enqueue: an entry with a ``dedupe_key`` is created at most once.
* Safe with several workers: claiming is a guarded update (``status='pending'`` in the WHERE
  clause), so two workers never both own an entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlmodel import Session, col

from handoff.models import OutboxEntry, OutboxStatus, utcnow

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))


def enqueue(
    session: Session,
    *,
    kind: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
    ordering_key: str,
    message_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> OutboxEntry | None:
    """Add an entry to the outbox inside the caller's transaction.

    Returns None when an entry with the same ``dedupe_key`` already exists. ``not_before``
    holds the entry until then (a CSM alert waiting for business hours); it also holds every
    later entry of its ``ordering_key``, so held entries get an ordering key of their own.
    """
    if dedupe_key is not None:
        found = session.execute(
            select(col(OutboxEntry.id)).where(col(OutboxEntry.dedupe_key) == dedupe_key)
        ).first()
        if found is not None:
            return None
    entry = OutboxEntry(
        kind=kind,
        channel=channel,
        target=target,
        payload=payload,
        ordering_key=ordering_key,
        message_id=message_id,
        dedupe_key=dedupe_key,
    )
    if not_before is not None:
        entry.next_attempt_at = not_before
    session.add(entry)
    session.flush()
    return entry


def claim_due(
    session: Session, *, limit: int = 50, now: datetime | None = None
) -> list[OutboxEntry]:
    """Claim up to ``limit`` due entries, at most one per ordering key, and commit the claim."""
    now = now or utcnow()
    # Leases of crashed workers expire: their entries become pending again.
    session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.status) == OutboxStatus.sending.value)
        .where(col(OutboxEntry.locked_until) < now)
        .values(status=OutboxStatus.pending.value, locked_until=None)
    )
    # Only the head of an ordering key (its oldest entry still pending or sending) may be
    # claimed, and only when it is pending and due. One scan and a sort, with no join, so the
    # plan cannot turn quadratic: the equivalent correlated NOT EXISTS took 2 s per claim
    # with 5,000 pending entries on a table PostgreSQL had not analyzed yet, starving the
    # worker; a join on the per-key minimum fared worse.
    unfinished = (
        select(
            col(OutboxEntry.id),
            col(OutboxEntry.status),
            col(OutboxEntry.next_attempt_at),
            func.row_number()
            .over(partition_by=col(OutboxEntry.ordering_key), order_by=col(OutboxEntry.id))
            .label("position"),
        )
        .where(
            col(OutboxEntry.status).in_([OutboxStatus.pending.value, OutboxStatus.sending.value])
        )
        .subquery()
    )
    candidates = (
        session.execute(
            select(unfinished.c.id)
            .where(unfinished.c.position == 1)
            .where(unfinished.c.status == OutboxStatus.pending.value)
            .where(unfinished.c.next_attempt_at <= now)
            .order_by(unfinished.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    claimed: list[int] = []
    for entry_id in candidates:
        result = session.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == entry_id)
            .where(col(OutboxEntry.status) == OutboxStatus.pending.value)
            .values(
                status=OutboxStatus.sending.value,
                locked_until=now + LEASE,
                attempts=col(OutboxEntry.attempts) + 1,
            )
        )
        if result.rowcount == 1:
            claimed.append(entry_id)
    session.commit()
    if not claimed:
        return []
    rows = (
        session.execute(
            select(OutboxEntry)
            .where(col(OutboxEntry.id).in_(claimed))
            .order_by(col(OutboxEntry.id))
        )
        .scalars()
        .all()
    )
    return list(rows)


def mark_sent(session: Session, entry_id: int, provider_message_id: str | None = None) -> None:
    """Record a successful delivery."""
    session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.id) == entry_id)
        .values(
            status=OutboxStatus.sent.value,
            sent_at=utcnow(),
            locked_until=None,
            provider_message_id=provider_message_id,
            last_error=None,
        )
    )


def mark_retry(
    session: Session,
    entry: OutboxEntry,
    error: str,
    *,
    delay: float | None,
    policy: RetryPolicy,
) -> bool:
    """Schedule another attempt (``delay`` from the provider, else backoff).

    Returns False and dead-letters the entry when its attempts are used up.
    """
    if entry.attempts >= policy.max_attempts:
        mark_dead(session, entry.id or 0, f"gave up after {entry.attempts} attempts: {error}")
        return False
    wait = delay if delay is not None else policy.delay(entry.attempts)
    session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.id) == entry.id)
        .values(
            status=OutboxStatus.pending.value,
            locked_until=None,
            next_attempt_at=utcnow() + timedelta(seconds=wait),
            last_error=error[:1000],
        )
    )
    return True


def mark_dead(session: Session, entry_id: int, error: str) -> None:
    """Move an entry to the dead-letter state: visible, never retried automatically."""
    logger.warning("outbox entry %s dead-lettered: %s", entry_id, error)
    session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.id) == entry_id)
        .values(status=OutboxStatus.dead.value, locked_until=None, last_error=error[:1000])
    )


# Delivery receipts only move forward; ``failed`` is terminal.
DELIVERY_ORDER = ("sent", "delivered", "read", "failed")


def record_delivery_status(
    session: Session,
    channel: str,
    provider_message_id: str,
    status: str,
    *,
    error: str | None = None,
) -> bool:
    """Record a provider's receipt (sent < delivered < read; failed is terminal).

    A guarded update, so receipts arriving out of order or twice never move an entry
    backwards. ``error`` (for ``failed``) becomes the entry's ``last_error``. Returns False
    for unknown statuses, unknown messages and receipts that would go backwards.
    """
    if status not in DELIVERY_ORDER:
        return False
    earlier = list(DELIVERY_ORDER[: DELIVERY_ORDER.index(status)])
    values: dict[str, Any] = {"delivery_status": status}
    if status == "failed" and error:
        values["last_error"] = error[:1000]
    result = session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.channel) == channel)
        .where(col(OutboxEntry.provider_message_id) == provider_message_id)
        .where(
            or_(
                col(OutboxEntry.delivery_status).is_(None),
                col(OutboxEntry.delivery_status).in_(earlier),
            )
        )
        .values(**values)
    )
    return bool(result.rowcount)


def delivery_failures(session: Session, message_ids: list[int]) -> dict[int, str]:
    """Why each of these messages did not reach the customer, for those that did not.

    A message failed when its outbox entry was dead-lettered (e.g. WhatsApp's 24-hour window,
    a bot blocked by the user, retries exhausted) or the provider reported ``failed`` later.
    """
    if not message_ids:
        return {}
    rows = session.execute(
        select(col(OutboxEntry.message_id), col(OutboxEntry.last_error))
        .where(col(OutboxEntry.message_id).in_(message_ids))
        .where(
            or_(
                col(OutboxEntry.status) == OutboxStatus.dead.value,
                col(OutboxEntry.delivery_status) == "failed",
            )
        )
    ).all()
    return {int(mid): (error or "not delivered") for mid, error in rows if mid is not None}


def next_due_in(session: Session, now: datetime | None = None) -> float | None:
    """Seconds until the next pending entry is due (0 if one is due), None if none pending."""
    now = now or utcnow()
    first = session.execute(
        select(col(OutboxEntry.next_attempt_at))
        .where(col(OutboxEntry.status) == OutboxStatus.pending.value)
        .order_by(col(OutboxEntry.next_attempt_at))
        .limit(1)
    ).scalar()
    if first is None:
        return None
    return max(0.0, (first - now).total_seconds())
