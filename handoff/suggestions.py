"""Unanswered-question mining: the customer messages the bot could not answer, clustered into
ranked suggestions of intents to teach it (issue 15). All writes to ``suggestions`` are here.

**Which messages.** A handoff whose reasons include ``unknown_topic``, ``low_confidence`` or
``ambiguous`` and not ``strategic_intent`` (asking for a person, a VIP account or an
at-risk account alone are not the bot not knowing) contributes its *trigger* message (the
one it was handed over for, ``context["trigger_message_id"]``; for older handoffs the last
customer text at or before its creation) and the customer's further text messages while it
waited for its first agent reply (customers rephrase while they wait). A "did you mean ...?"
still waiting for a tap contributes the message it asked about. A "didn't help" vote
contributes the customer message the voted answer replied to. Left out: messages without a
letter, messages naming a strategic term, messages older than the window (90 days), messages
in an accepted, training or dismissed suggestion; only the most recent 3,000 are clustered.

**Ranking.** ``score = size x 0.5 ** (age of the newest message in days / 14) x
(1 + log10(1 + ARR of the distinct accounts that asked / 10,000))``: many questions, asked
lately, by accounts worth more, first.

**Stable ids.** A refresh reconciles the new clusters with the open suggestions: a cluster
sharing at least half of an open suggestion's messages keeps that suggestion's id; open
suggestions no cluster matches are deleted. Suggestions store message ids, never text, so an
erasure (``handoff/privacy.py``) takes the customer's words out of them as well.

Transitions (guarded on status and version, like ``handoff/queue.py``)::

    open --begin_training--> training --finish(passed)--> accepted
                                      --finish(refused)--> open (with the reason in ``error``)
    open --dismiss--> dismissed
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, text, update
from sqlmodel import Session, col, select

from classifier.mining import Embedder, cluster_texts, granularity_cut
from handoff.db import is_postgres, write_lock
from handoff.errors import Conflict, InvalidTransition, NotFound
from handoff.models import (
    Account,
    Author,
    Contact,
    Conversation,
    Direction,
    Feedback,
    Handoff,
    Message,
    Prompt,
    Suggestion,
    SuggestionStatus,
    utcnow,
)
from handoff.prompts import CLARIFY

logger = logging.getLogger(__name__)

NOT_KNOWING = frozenset({"unknown_topic", "low_confidence", "ambiguous"})
STRATEGIC = "strategic_intent"
TEXT_KINDS = ("text", "edit")
WINDOW_DAYS = 90
MAX_MESSAGES = 3000
HALF_LIFE_DAYS = 14.0
ARR_UNIT = 10_000.0
MATCH_SHARE = 0.5
STALE_SECONDS = 60.0
# The cut of the clustering tree with sentence embeddings when it cannot be derived from the
# FAQ (``Miner``'s ``reference``): classifier/mining.py's default (0.35) keeps BANKING77's
# near-sibling intents apart in the learning replay, but customers asking one new question in
# a dozen ways share few words (MiniLM cosine distances among them average about 0.6, against
# 0.8-0.9 to other questions) and come out as several small suggestions at 0.35-0.5.
EMBEDDING_DISTANCE = 0.78
_LOCK_KEY = 15_015  # pg_advisory_xact_lock: one refresh at a time across instances


@dataclass(frozen=True)
class Asked:
    """One eligible customer message."""

    message_id: int
    conversation_id: int
    text: str
    created_at: datetime
    account_id: int | None


def has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _customer_texts(stmt: Any) -> Any:
    return stmt.where(
        Message.direction == Direction.inbound.value,
        Message.author == Author.customer.value,
        col(Message.kind).in_(TEXT_KINDS),
    )


def _taught(session: Session) -> set[int]:
    """Message ids of suggestions decided or being taught: they never come back."""
    rows = session.exec(
        select(Suggestion.message_ids).where(Suggestion.status != SuggestionStatus.open.value)
    ).all()
    return {int(i) for ids in rows for i in (ids or [])}


def eligible_message_ids(session: Session, now: datetime, window_days: int) -> set[int]:
    """Ids of the customer messages that mark the bot not knowing, before exclusions."""
    since = now - timedelta(days=window_days)
    ids: set[int] = set()
    handoffs = session.exec(select(Handoff).where(col(Handoff.created_at) >= since)).all()
    for h in handoffs:
        reasons = set(h.reasons or [])
        if not reasons & NOT_KNOWING or STRATEGIC in reasons:
            continue
        trigger = (h.context or {}).get("trigger_message_id")
        if not isinstance(trigger, int):
            trigger = session.exec(
                _customer_texts(select(Message.id))
                .where(Message.conversation_id == h.conversation_id)
                .where(col(Message.created_at) <= h.created_at)
                .order_by(col(Message.id).desc())
            ).first()
        if trigger is None:
            continue
        ids.add(trigger)
        until = h.first_response_at or h.resolved_at or now
        ids.update(
            session.exec(
                _customer_texts(select(Message.id))
                .where(Message.conversation_id == h.conversation_id)
                .where(col(Message.id) > trigger)
                .where(col(Message.created_at) >= h.created_at)
                .where(col(Message.created_at) <= until)
            ).all()
        )
    # A "did you mean ...?" nobody answered yet: the bot was not sure either (once it expires
    # it becomes an ``ambiguous`` handoff, above; a tap on an FAQ told us what was meant).
    pending = session.exec(
        select(Prompt)
        .where(Prompt.kind == CLARIFY)
        .where(col(Prompt.answered_at).is_(None))
        .where(col(Prompt.created_at) >= since)
    ).all()
    for prompt in pending:
        source = (prompt.details or {}).get("source_message_id")
        if isinstance(source, int):
            ids.add(source)
    votes = session.exec(
        select(Feedback)
        .where(Feedback.kind == "didnt_help")
        .where(col(Feedback.created_at) >= since)
    ).all()
    for vote in votes:
        answer = session.exec(
            select(Message.id)
            .where(Message.conversation_id == vote.conversation_id)
            .where(Message.direction == Direction.outbound.value)
            .where(Message.author == Author.bot.value)
            .where(Message.intent == vote.intent)
            .where(col(Message.created_at) <= vote.created_at)
            .order_by(col(Message.id).desc())
        ).first()
        if answer is None:
            continue
        asked = session.exec(
            _customer_texts(select(Message.id))
            .where(Message.conversation_id == vote.conversation_id)
            .where(col(Message.id) < answer)
            .order_by(col(Message.id).desc())
        ).first()
        if asked is not None:
            ids.add(asked)
    return ids


def collect(
    session: Session, *, now: datetime | None = None, window_days: int = WINDOW_DAYS
) -> list[Asked]:
    """The eligible messages (see the module's docstring), oldest first, at most 3,000."""
    now = now or utcnow()
    ids = eligible_message_ids(session, now, window_days) - _taught(session)
    if not ids:
        return []
    since = now - timedelta(days=window_days)
    rows = session.exec(
        select(Message, Contact.account_id)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(col(Message.id).in_(sorted(ids)))
        .where(col(Message.created_at) >= since)
        .order_by(col(Message.id))
    ).all()
    asked = [
        Asked(m.id or 0, m.conversation_id, m.text, m.created_at, account_id)
        for m, account_id in rows
        if has_letter(m.text) and not (m.raw or {}).get("strategic_term")
    ]
    return asked[-MAX_MESSAGES:]


def score(size: int, newest: datetime, arr: float, now: datetime) -> float:
    """``size x recency x value`` (see the module's docstring)."""
    age_days = max((now - newest).total_seconds(), 0.0) / 86_400
    recency = 0.5 ** (age_days / HALF_LIFE_DAYS)
    return size * recency * (1 + math.log10(1 + max(arr, 0.0) / ARR_UNIT))


def _arr_of(session: Session, account_ids: set[int]) -> float:
    if not account_ids:
        return 0.0
    values = session.exec(select(Account.arr).where(col(Account.id).in_(account_ids))).all()
    return float(sum(v or 0.0 for v in values))


def refresh(
    engine: Engine,
    embed: Embedder | None = None,
    *,
    distance_threshold: float | None = None,
    window_days: int = WINDOW_DAYS,
    now: datetime | None = None,
) -> list[int]:
    """Cluster the eligible messages and reconcile the open suggestions; their ids, best
    first. The clustering runs outside any transaction; the reconciliation is short."""
    now = now or utcnow()
    with Session(engine) as session:
        asked = collect(session, now=now, window_days=window_days)
    clusters = cluster_texts(
        [a.text for a in asked], embed=embed, distance_threshold=distance_threshold
    )
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        if is_postgres(engine):
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        taught = _taught(session)  # a suggestion accepted meanwhile keeps its messages
        fresh: list[tuple[list[int], Any, float, datetime, datetime]] = []
        for cluster in clusters:
            members = [asked[i] for i in cluster.members if asked[i].message_id not in taught]
            if not members:
                continue
            newest = max(m.created_at for m in members)
            oldest = min(m.created_at for m in members)
            arr = _arr_of(session, {m.account_id for m in members if m.account_id is not None})
            fresh.append(
                (
                    [m.message_id for m in members],
                    cluster,
                    score(len(members), newest, arr, now),
                    oldest,
                    newest,
                )
            )
        open_rows = list(
            session.exec(
                select(Suggestion).where(Suggestion.status == SuggestionStatus.open.value)
            ).all()
        )
        unmatched = {s.id: s for s in open_rows}
        ids: list[tuple[float, int]] = []
        for message_ids, cluster, value, oldest, newest in fresh:
            wanted = set(message_ids)
            best, best_share = None, 0.0
            for candidate in unmatched.values():
                old = set(candidate.message_ids or [])
                share = len(old & wanted) / len(old) if old else 0.0
                if share > best_share:
                    best, best_share = candidate, share
            if best is not None and best_share >= MATCH_SHARE:
                row = unmatched.pop(best.id)
                row.version += 1
            else:
                row = Suggestion(created_at=now)
            row.label = cluster.label[:300]
            row.terms = list(cluster.terms)
            row.message_ids = message_ids
            row.score = value
            row.first_seen, row.last_seen = oldest, newest
            row.updated_at = now
            session.add(row)
            session.flush()
            ids.append((value, row.id or 0))
        for gone in unmatched.values():
            session.delete(gone)
        session.commit()
    return [i for _, i in sorted(ids, key=lambda pair: (-pair[0], pair[1]))]


class Miner:
    """Keeps the suggestions fresh for readers: :meth:`ensure_fresh` refreshes when the last
    refresh of this process is older than ``stale_seconds`` or new messages or votes arrived
    since (a cheap check of the highest ids), one refresh at a time."""

    def __init__(
        self,
        engine: Engine,
        embedder: Callable[[], Embedder | None],
        *,
        reference: Callable[[], tuple[list[str], list[str]]] | None = None,
        distance_threshold: float | None = None,
        window_days: int = WINDOW_DAYS,
        stale_seconds: float = STALE_SECONDS,
    ) -> None:
        self._engine = engine
        self._embedder = embedder
        self._reference = reference
        self._cut: tuple[int, float] | None = None  # (hash of the reference, its cut)
        self._distance = distance_threshold
        self._window_days = window_days
        self._stale = stale_seconds
        self._lock = threading.Lock()
        self._last: float | None = None
        self._mark: tuple[Any, ...] | None = None

    def _marker(self) -> tuple[Any, ...]:
        with Session(self._engine) as session:
            return (
                session.exec(select(func.max(Message.id))).one(),
                session.exec(select(func.max(Feedback.id))).one(),
                session.exec(select(func.count()).select_from(Suggestion)).one(),
            )

    def ensure_fresh(self) -> None:
        with self._lock:
            mark = self._marker()
            fresh = self._last is not None and time.monotonic() - self._last < self._stale
            if fresh and mark == self._mark:
                return
            self.refresh_now()

    def cut(self, embed: Embedder) -> float:
        """The embeddings cut: as broad as the FAQ's own intents (``granularity_cut`` of the
        ``reference`` examples, recomputed when they change), else ``EMBEDDING_DISTANCE``."""
        if self._reference is None:
            return EMBEDDING_DISTANCE
        texts, labels = self._reference()
        key = hash((tuple(texts), tuple(labels)))
        if self._cut is None or self._cut[0] != key:
            derived = granularity_cut(texts, labels, embed)
            self._cut = (key, derived if derived is not None else EMBEDDING_DISTANCE)
            logger.info("suggestions: clustering cut %.3f (from the FAQ's intents)", self._cut[1])
        return self._cut[1]

    def refresh_now(self) -> list[int]:
        embed = self._embedder()
        distance = self._distance
        if distance is None and embed is not None:
            distance = self.cut(embed)
        ids = refresh(
            self._engine,
            embed,
            distance_threshold=distance,
            window_days=self._window_days,
        )
        self._last = time.monotonic()
        self._mark = self._marker()
        return ids

    def forget(self) -> None:
        """The next :meth:`ensure_fresh` refreshes (after a suggestion was decided)."""
        self._last = None


# ------------------------------------------------------------------------- transitions
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "begin_training": (frozenset({SuggestionStatus.open.value}), SuggestionStatus.training.value),
    "accept": (frozenset({SuggestionStatus.training.value}), SuggestionStatus.accepted.value),
    "refuse": (frozenset({SuggestionStatus.training.value}), SuggestionStatus.open.value),
    "dismiss": (frozenset({SuggestionStatus.open.value}), SuggestionStatus.dismissed.value),
}


def get(session: Session, suggestion_id: int) -> Suggestion:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise NotFound(f"suggestion {suggestion_id} not found")
    return suggestion


def transition(session: Session, suggestion: Suggestion, name: str, **values: Any) -> Suggestion:
    """Apply a named transition with one guarded update; InvalidTransition or Conflict."""
    sources, target = TRANSITIONS[name]
    if suggestion.status not in sources:
        wanted = " or ".join(sorted(sources))
        raise InvalidTransition(f"suggestion {suggestion.id} is {suggestion.status}, not {wanted}")
    values = {**values, "status": target, "version": suggestion.version + 1, "updated_at": utcnow()}
    result = session.execute(
        update(Suggestion)
        .where(col(Suggestion.id) == suggestion.id)
        .where(col(Suggestion.status) == suggestion.status)
        .where(col(Suggestion.version) == suggestion.version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"suggestion {suggestion.id} was changed by someone else; reload and retry")
    session.refresh(suggestion)
    return suggestion


def live_messages(session: Session, message_ids: Sequence[int]) -> list[Message]:
    """The suggestion's messages that still have text (erased ones drop out), in its order."""
    if not message_ids:
        return []
    found = {
        m.id: m
        for m in session.exec(select(Message).where(col(Message.id).in_(list(message_ids)))).all()
    }
    return [found[i] for i in message_ids if i in found and has_letter(found[i].text)]
