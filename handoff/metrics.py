"""Support figures for the console's dashboard, over a date range and split by account tier.

Every figure is computed from stored rows (messages, handoffs, handoff events, feedback) for
the days ``start`` .. ``end`` inclusive (UTC). The definitions:

* **Conversation in the range** — a conversation with at least one customer text message
  (``direction=inbound``, ``author=customer``, kind ``text`` or ``edit``; commands such as
  ``/start`` and button taps are not counted) created in the range. Its tier is the tier of
  its contact's account today (``unknown`` without an account).
* **Escalated conversation** — one of those for which a handoff was created, or a resolved
  handoff reopened, in the range.
* **Auto-resolved conversation** — one of those that received at least one automatic answer
  (an outbound bot message carrying an intent, i.e. a rendered FAQ or small-talk answer) in
  the range and was not escalated in the range.
* **Auto-resolution (deflection) rate** = auto-resolved / conversations in the range. The
  remainder were escalated, or neither (e.g. messages forwarded to a handoff opened before
  the range, throttled floods, messages that are not text).
* **Escalations** — handoffs created in the range, counted per reason code (one handoff with
  two reasons counts once under each) and per day. Their tier is the tier of the account
  recorded on the handoff at escalation.
* **First response time** — ``first_response_at - created_at`` of the handoffs created in the
  range that have been answered; **time to resolution** — ``resolved_at - created_at`` of
  those that are resolved. Both count business time for the priorities whose SLA clock runs
  in business hours (``data/hours.yaml``; 24/7 when no hours are configured). Median and
  90th percentile (linear interpolation between closest ranks, like numpy's default), in
  seconds; computed in Python so that SQLite and PostgreSQL agree.
* **CSAT** — the average of the 1-5 scores (``feedback.kind = 'csat'``) given in the range.
* **Top intents** — inbound customer messages in the range by the classifier's top intent.
* **"Didn't help" rate of an FAQ intent** = didn't-help votes / (helpful + didn't-help votes)
  in the range: the share of customers who voted on an automatic answer and said it did not
  help. Answers sent without a vote are not in the denominator (``answers`` shows how many
  were sent, so the vote coverage is visible beside the rate).

Authorization: admins and agents see every account (and conversations without one); a CSM
sees only the figures of the accounts they own. Other roles get ``PermissionDenied``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from handoff import access
from handoff.access import Principal
from handoff.errors import InvalidInput
from handoff.hours import BusinessHours
from handoff.hours import elapsed as clock_seconds
from handoff.models import (
    Account,
    Author,
    Contact,
    Conversation,
    Direction,
    Feedback,
    Handoff,
    HandoffEvent,
    Message,
)

logger = logging.getLogger(__name__)

UNKNOWN_TIER = "unknown"
TIER_ORDER = ("strategic", "enterprise", "mid-market", "mid", "smb")
MAX_DAYS = 366
TOP_INTENTS = 10
CUSTOMER_KINDS = ("text", "edit")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """How long something took: count, median and 90th percentile, in seconds."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        return cls(len(seconds), percentile(seconds, 50), percentile(seconds, 90))


@dataclass(frozen=True)
class TierFigures:
    """The headline figures of one tier (or of every tier, ``tier == "all"``)."""

    tier: str
    conversations: int
    auto_resolved: int
    escalated_conversations: int
    escalations: int
    first_response: Spread
    resolution: Spread
    csat_average: float | None
    csat_count: int

    @property
    def deflection_rate(self) -> float | None:
        return self.auto_resolved / self.conversations if self.conversations else None


@dataclass(frozen=True)
class IntentFeedback:
    intent: str
    answers: int
    helpful: int
    didnt_help: int

    @property
    def votes(self) -> int:
        return self.helpful + self.didnt_help

    @property
    def didnt_help_rate(self) -> float | None:
        return self.didnt_help / self.votes if self.votes else None


@dataclass(frozen=True)
class Dashboard:
    start: date
    end: date
    scoped: bool  # True: a CSM's own accounts only
    total: TierFigures
    tiers: list[TierFigures]
    reasons: list[tuple[str, int]]
    csat_scores: dict[int, int]
    top_intents: list[tuple[str, int]]
    intent_feedback: list[IntentFeedback]
    escalations_per_day: list[tuple[date, int]]


@dataclass
class _Tally:
    conversations: set[int] = field(default_factory=set)
    answered: set[int] = field(default_factory=set)
    escalated: set[int] = field(default_factory=set)
    escalations: int = 0
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)

    def figures(self, tier: str) -> TierFigures:
        convs = self.conversations
        escalated = self.escalated & convs
        return TierFigures(
            tier=tier,
            conversations=len(convs),
            auto_resolved=len((self.answered & convs) - escalated),
            escalated_conversations=len(escalated),
            escalations=self.escalations,
            first_response=Spread.of(self.first_response),
            resolution=Spread.of(self.resolution),
            csat_average=sum(self.csat) / len(self.csat) if self.csat else None,
            csat_count=len(self.csat),
        )


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise InvalidInput("the end date is before the start date")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"choose a range of at most {MAX_DAYS} days")
    since = datetime.combine(start, time.min, tzinfo=UTC)
    return since, since + timedelta(days=(end - start).days + 1)


def date_window(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants ``start`` 00:00 .. the day after ``end`` 00:00 (InvalidInput when the
    range is reversed or too long)."""
    return _window(start, end)


def _owned_accounts(session: Session, principal: Principal) -> set[int] | None:
    """None: every account (and none); else the ids of the CSM's accounts."""
    return access.account_ids(session, principal)


def _tier_key(tier: str) -> tuple[int, str]:
    if tier == UNKNOWN_TIER:
        return (len(TIER_ORDER) + 1, tier)
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def _in(owned: set[int] | None, account_id: int | None) -> bool:
    return owned is None or (account_id is not None and account_id in owned)


def _conversation_messages(
    session: Session, since: datetime, until: datetime, *, inbound: bool
) -> list[Any]:
    """(conversation id, intent, account id) of customer messages, or of automatic answers."""
    stmt = (
        select(Message.conversation_id, Message.intent, Contact.account_id)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(col(Message.created_at) >= since, col(Message.created_at) < until)
    )
    if inbound:
        stmt = stmt.where(
            Message.direction == Direction.inbound.value,
            Message.author == Author.customer.value,
            col(Message.kind).in_(CUSTOMER_KINDS),
        )
    else:
        stmt = stmt.where(
            Message.direction == Direction.outbound.value,
            Message.author == Author.bot.value,
            col(Message.intent).is_not(None),
        )
    return list(session.exec(stmt).all())


def elapsed(since: datetime, until: datetime, handoff: Handoff, clock: BusinessHours) -> float:
    """Seconds from ``since`` to ``until`` on the handoff's SLA clock (business time for
    priorities configured to count business hours only)."""
    return clock_seconds(since, until, handoff.priority, clock)


def _days(start: date, end: date) -> Iterable[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def dashboard(
    session: Session,
    principal: Principal,
    start: date,
    end: date,
    faq_intents: Iterable[str] | None = None,
    hours: BusinessHours | None = None,
) -> Dashboard:
    """The dashboard's figures for ``start`` .. ``end`` (inclusive), as ``principal`` may see.

    ``faq_intents`` limits the "didn't help" table to those intents (e.g. the FAQ category);
    by default every intent that was answered or voted on is listed.
    """
    since, until = _window(start, end)
    owned = _owned_accounts(session, principal)
    clock = hours or BusinessHours()
    tiers = {
        a_id: (tier or UNKNOWN_TIER).strip().lower() or UNKNOWN_TIER
        for a_id, tier in session.exec(select(Account.id, Account.tier)).all()
        if a_id is not None
    }

    def tier_of(account_id: int | None) -> str:
        return tiers.get(account_id, UNKNOWN_TIER) if account_id is not None else UNKNOWN_TIER

    by_tier: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    conv_tier: dict[int, str] = {}
    intents: Counter[str] = Counter()
    for conv_id, intent, account_id in _conversation_messages(session, since, until, inbound=True):
        if not _in(owned, account_id):
            continue
        conv_tier[conv_id] = tier_of(account_id)
        for tally in (total, by_tier[conv_tier[conv_id]]):
            tally.conversations.add(conv_id)
        if intent:
            intents[intent] += 1
    answers: Counter[str] = Counter()
    for conv_id, intent, account_id in _conversation_messages(session, since, until, inbound=False):
        if not _in(owned, account_id):
            continue
        answers[intent] += 1
        for tally in (total, by_tier[tier_of(account_id)]):
            tally.answered.add(conv_id)

    created = session.exec(
        select(Handoff).where(col(Handoff.created_at) >= since, col(Handoff.created_at) < until)
    ).all()
    reasons: Counter[str] = Counter()
    per_day: Counter[date] = Counter()
    for h in created:
        if not _in(owned, h.account_id):
            continue
        reasons.update(h.reasons or [])
        per_day[h.created_at.astimezone(UTC).date()] += 1
        for tally in (total, by_tier[tier_of(h.account_id)]):
            tally.escalations += 1
            tally.escalated.add(h.conversation_id)
            if h.first_response_at is not None:
                tally.first_response.append(elapsed(h.created_at, h.first_response_at, h, clock))
            if h.resolved_at is not None:
                tally.resolution.append(elapsed(h.created_at, h.resolved_at, h, clock))
    reopened = session.exec(
        select(Handoff.conversation_id, Handoff.account_id)
        .join(HandoffEvent, col(HandoffEvent.handoff_id) == col(Handoff.id))
        .where(HandoffEvent.transition == "reopen")
        .where(col(HandoffEvent.created_at) >= since, col(HandoffEvent.created_at) < until)
    ).all()
    for conv_id, account_id in reopened:
        if _in(owned, account_id):
            for tally in (total, by_tier[conv_tier.get(conv_id, tier_of(account_id))]):
                tally.escalated.add(conv_id)

    votes: dict[str, Counter[str]] = defaultdict(Counter)
    csat_scores: Counter[int] = Counter()
    feedback = session.exec(
        select(Feedback).where(col(Feedback.created_at) >= since, col(Feedback.created_at) < until)
    ).all()
    for f in feedback:
        if not _in(owned, f.account_id):
            continue
        if f.kind == "csat" and f.score is not None and 1 <= f.score <= 5:
            csat_scores[f.score] += 1
            for tally in (total, by_tier[tier_of(f.account_id)]):
                tally.csat.append(f.score)
        elif f.kind in ("helpful", "didnt_help") and f.intent:
            votes[f.intent][f.kind] += 1

    allowed = set(faq_intents) if faq_intents is not None else None
    names = sorted(n for n in set(answers) | set(votes) if (allowed is None or n in allowed) and n)
    intent_feedback = [
        IntentFeedback(n, answers[n], votes[n]["helpful"], votes[n]["didnt_help"]) for n in names
    ]
    intent_feedback.sort(key=lambda i: (-(i.didnt_help_rate or 0), -i.answers, i.intent))
    return Dashboard(
        start=start,
        end=end,
        scoped=owned is not None,
        total=total.figures("all"),
        tiers=[by_tier[t].figures(t) for t in sorted(by_tier, key=_tier_key)],
        reasons=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        csat_scores={score: csat_scores[score] for score in range(1, 6)},
        top_intents=sorted(intents.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_INTENTS],
        intent_feedback=intent_feedback,
        escalations_per_day=[(d, per_day[d]) for d in _days(start, end)],
    )


NOT_KNOWING = frozenset({"unknown_topic", "low_confidence", "ambiguous"})


@dataclass(frozen=True)
class WeekShare:
    """Handoffs created in the week starting ``start`` (a Monday, UTC), and how many of them
    were the bot not knowing (reasons ``unknown_topic``, ``low_confidence`` or ``ambiguous``)."""

    start: date
    handoffs: int
    not_knowing: int

    @property
    def share(self) -> float | None:
        return self.not_knowing / self.handoffs if self.handoffs else None


def not_knowing_weekly(
    session: Session, principal: Principal, today: date, weeks: int = 8
) -> list[WeekShare]:
    """The share of handoffs whose reasons say the bot did not know, week by week (the last
    ``weeks`` weeks, the current one included, oldest first), as ``principal`` may see: what
    teaching the bot from escalations should bring down."""
    owned = _owned_accounts(session, principal)
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    rows = session.exec(
        select(Handoff.created_at, Handoff.reasons, Handoff.account_id).where(
            col(Handoff.created_at) >= since
        )
    ).all()
    total: Counter[date] = Counter()
    unknown: Counter[date] = Counter()
    for created_at, reasons, account_id in rows:
        if not _in(owned, account_id):
            continue
        day = created_at.astimezone(UTC).date()
        week = day - timedelta(days=day.weekday())
        total[week] += 1
        if NOT_KNOWING & set(reasons or []):
            unknown[week] += 1
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    return [WeekShare(w, total[w], unknown[w]) for w in starts]
