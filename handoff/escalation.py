"""The escalation policy: answer automatically, or hand the conversation to a person.

One pure function of the facts at hand (what the classifier said, the message's signals, the
account's CS context) and a policy configured in ``data/policy.yaml``. It returns a
``Decision`` with reason codes so that agents, CSMs and the dashboard can see *why*.

Reason codes: ``requested_human``, ``strategic_intent``, ``unknown_topic``, ``ambiguous``,
``low_confidence``, ``negative_sentiment``, ``repeated_contact``, ``vip_account``,
``at_risk_account``, ``renewal_window``.

When the bot cannot act on the classifier's answer, the reason says why, as the classifier
said it (``MessageFacts.abstain_reason``): ``unknown_topic`` (unlike anything the bot knows),
``ambiguous`` (two or more intents are close) or ``low_confidence`` (anything else uncertain).

Clarify instead of guessing: an ``ambiguous`` message that nothing else sends to a person (no
request for a person, nothing strategic, negative or repeated, no account whose policy
escalates plain FAQs) gets ``Action.clarify``: the bot asks "did you mean ...?" with the
closest answerable intents (:func:`clarify_candidates`). With fewer than two of them, or when
the previous clarification was answered by another ambiguous message, it escalates as
``ambiguous``.

A message that names a sensitive topic from ``strategic_terms`` (GDPR, a lawyer, a security
vulnerability, a refund, cancelling...) is ``strategic_intent`` whatever the classifier
thought: a deterministic guard against the classifier's confident mistakes on the cases
where an automatic answer costs the most.

Priorities: P1 for a VIP or at-risk account with anything strategic, negative, repeated or
uncertain (or asking for a person); P2 for an explicit request for a person (``/human``, a
"talk to a person" button or words that say so), strategic, negative or repeated problems, or
an account in its renewal window; P3 otherwise. The three uncertainty reasons weigh the same.
A request for a person with no words to classify (a command or a button) is not "uncertain":
the customer said what they want.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field


class Reason(enum.StrEnum):
    requested_human = "requested_human"
    strategic_intent = "strategic_intent"
    unknown_topic = "unknown_topic"
    ambiguous = "ambiguous"
    low_confidence = "low_confidence"
    negative_sentiment = "negative_sentiment"
    repeated_contact = "repeated_contact"
    vip_account = "vip_account"
    at_risk_account = "at_risk_account"
    renewal_window = "renewal_window"


class Action(enum.StrEnum):
    answer = "answer"
    escalate = "escalate"
    clarify = "clarify"  # ask "did you mean ...?" with ``Decision.candidates``


# The classifier's abstain reasons (``classifier.Prediction.reason``), as reason codes.
UNCERTAINTY_REASONS: dict[str, Reason] = {
    "unknown_topic": Reason.unknown_topic,
    "ambiguous": Reason.ambiguous,
    "low_confidence": Reason.low_confidence,
}
MAX_CLARIFY_OPTIONS = 3
MIN_CLARIFY_PROBABILITY = 0.1  # a candidate below this is not worth a button...
MIN_CLARIFY_SHARE = 1 / 3  # ...nor one below this share of the best guess


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VipPolicy(_Strict):
    tiers: list[str] = ["enterprise", "strategic"]
    min_arr: float = 50000
    expansion_stages_in_progress: list[str] = [
        "discovery",
        "proposal",
        "negotiation",
        "trial",
    ]
    qbr_within_days: int = 14
    renewal_within_days: int = 60
    plain_faq: str = Field(default="answer_with_offer", pattern="^(answer_with_offer|escalate)$")


class AtRiskPolicy(_Strict):
    health_statuses: list[str] = ["red"]
    max_health_score: int = 40
    plain_faq: str = Field(default="escalate", pattern="^(answer_with_offer|escalate)$")


class SentimentPolicy(_Strict):
    negative_threshold: float = Field(default=0.7, ge=0, le=1)


class RepeatedContactPolicy(_Strict):
    same_intent_count: int = Field(default=2, ge=1)
    window_days: int = Field(default=7, ge=1)


class RateLimitPolicy(_Strict):
    """Per-chat flood protection: messages over the limit are stored but not answered."""

    max_messages: int = Field(default=20, ge=1)
    per_seconds: int = Field(default=60, ge=1)


class AssignmentPolicy(_Strict):
    """Automatic assignment of new handoffs to online staff (``handoff/assignment.py``)."""

    enabled: bool = True
    # A strategic handoff (``strategic_intent``) goes to the account's CSM when they are online.
    strategic_to_csm: bool = False
    # Handoffs of someone away this long go back to the queue.
    away_return_minutes: int = Field(default=5, ge=1, le=24 * 60)


class PolicyConfig(_Strict):
    """The validated contents of ``policy.yaml``."""

    strategic_categories: list[str] = ["strategic"]
    human_categories: list[str] = ["human"]
    answerable_categories: list[str] = ["faq", "smalltalk"]
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    sentiment: SentimentPolicy = SentimentPolicy()
    repeated_contact: RepeatedContactPolicy = RepeatedContactPolicy()
    vip: VipPolicy = VipPolicy()
    at_risk: AtRiskPolicy = AtRiskPolicy()
    renewal_window_days: int = 90
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    sla_minutes: dict[int, int] = {1: 15, 2: 60, 3: 240}
    # Words or phrases (case-insensitive, whole words, any spacing) that always reach a person.
    strategic_terms: list[str] = Field(default_factory=list, max_length=500)
    assignment: AssignmentPolicy = AssignmentPolicy()


def load_policy(path: str | Path) -> PolicyConfig:
    """Read and validate a policy file; raises ValueError naming the bad field."""
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    try:
        return PolicyConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError: re-raised with the file named
        raise ValueError(f"invalid escalation policy {path}: {exc}") from exc


@lru_cache(maxsize=16)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [t.split() for t in terms if t.strip()]
    if not words:
        return None
    phrases = sorted((r"\s+".join(map(re.escape, w)) for w in words), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def strategic_term(policy: PolicyConfig, text: str | None) -> str | None:
    """The first of the policy's ``strategic_terms`` that ``text`` names, else None."""
    pattern = _terms_pattern(tuple(policy.strategic_terms))
    if pattern is None or not text:
        return None
    found = pattern.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True)
class AccountFacts:
    """What the policy needs to know about the customer's account (all optional)."""

    tier: str | None = None
    arr: float | None = None
    renewal_date: date | None = None
    next_qbr_date: date | None = None
    expansion_stage: str | None = None
    health_status: str | None = None
    health_score: int | None = None


@dataclass(frozen=True)
class MessageFacts:
    """What is known about the message being decided on."""

    intent: str | None  # None: the classifier abstained
    category: str | None  # FAQ category of the intent (faq, strategic, human, ...)
    confidence: float
    negativity: float | None = None  # 0..1, from the sentiment model
    requested_human: bool = False  # /human, a "talk to a person" button
    didnt_help: bool = False  # the customer said the last answer did not help
    same_intent_recent: int = 0  # earlier messages with this intent in the window
    strategic_term: str | None = None  # a policy strategic term the text names
    abstain_reason: str | None = None  # why the classifier abstained (unknown_topic, ...)
    candidates: tuple[str, ...] = ()  # answerable intents to offer (clarify_candidates)
    after_clarification: bool = False  # it answers a "did you mean ...?" we asked


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...] = ()
    priority: int | None = None
    offer_human: bool = False
    account_flags: tuple[Reason, ...] = field(default=())
    candidates: tuple[str, ...] = ()  # clarify: the intents to offer, best first

    @property
    def escalate(self) -> bool:
        return self.action is Action.escalate


def account_flags(policy: PolicyConfig, account: AccountFacts | None, today: date) -> list[Reason]:
    """The account-level reasons that apply now: VIP, at risk, renewal window."""
    if account is None:
        return []
    flags: list[Reason] = []
    vip = policy.vip
    renewal_days = (account.renewal_date - today).days if account.renewal_date else None
    qbr_days = (account.next_qbr_date - today).days if account.next_qbr_date else None
    if (
        (account.tier or "").lower() in {t.lower() for t in vip.tiers}
        or (account.arr or 0) >= vip.min_arr
        or (account.expansion_stage or "").lower()
        in {s.lower() for s in vip.expansion_stages_in_progress}
        or (qbr_days is not None and 0 <= qbr_days <= vip.qbr_within_days)
        or (renewal_days is not None and 0 <= renewal_days <= vip.renewal_within_days)
    ):
        flags.append(Reason.vip_account)
    risk = policy.at_risk
    if (account.health_status or "").lower() in {s.lower() for s in risk.health_statuses} or (
        account.health_score is not None and account.health_score <= risk.max_health_score
    ):
        flags.append(Reason.at_risk_account)
    if renewal_days is not None and 0 <= renewal_days <= policy.renewal_window_days:
        flags.append(Reason.renewal_window)
    return flags


def decide(
    policy: PolicyConfig,
    message: MessageFacts,
    account: AccountFacts | None,
    today: date,
) -> Decision:
    """Decide whether to answer, clarify or escalate, with reason codes and a priority."""
    reasons: list[Reason] = []
    if message.requested_human or message.category in policy.human_categories:
        reasons.append(Reason.requested_human)
    if message.category in policy.strategic_categories or message.strategic_term:
        reasons.append(Reason.strategic_intent)
    answerable = message.category in policy.answerable_categories
    told_us = message.requested_human and message.abstain_reason is None
    if not told_us and (
        message.intent is None
        or message.confidence < policy.min_confidence
        or not (answerable or reasons)
    ):
        reasons.append(_uncertainty(message))
    if message.negativity is not None and message.negativity >= policy.sentiment.negative_threshold:
        reasons.append(Reason.negative_sentiment)
    if message.didnt_help or (
        message.intent is not None
        and message.same_intent_recent >= policy.repeated_contact.same_intent_count
    ):
        reasons.append(Reason.repeated_contact)

    flags = account_flags(policy, account, today)
    vip = Reason.vip_account in flags
    at_risk = Reason.at_risk_account in flags
    # The account's policy sends even a plain FAQ to a person.
    faq_escalates = (at_risk and policy.at_risk.plain_faq == "escalate") or (
        vip and policy.vip.plain_faq == "escalate"
    )

    if not reasons:
        # A plain, confident FAQ (or small talk): account flags decide.
        if message.category == "smalltalk":
            return Decision(Action.answer, account_flags=tuple(flags))
        if faq_escalates:
            return _escalate([*flags], 2, policy, flags)
        return Decision(Action.answer, offer_human=vip or at_risk, account_flags=tuple(flags))

    if (
        reasons == [Reason.ambiguous]
        and not message.after_clarification
        and len(message.candidates) >= 2
        and not faq_escalates
    ):
        # Nothing but the doubt between close intents: ask which one was meant.
        candidates = tuple(message.candidates[:MAX_CLARIFY_OPTIONS])
        return Decision(
            Action.clarify, tuple(reasons), account_flags=tuple(flags), candidates=candidates
        )

    if vip or at_risk:
        priority = 1
    elif {
        Reason.requested_human,
        Reason.strategic_intent,
        Reason.negative_sentiment,
        Reason.repeated_contact,
    } & set(reasons) or Reason.renewal_window in flags:
        priority = 2
    else:
        priority = 3
    return _escalate([*reasons, *flags], priority, policy, flags)


def _uncertainty(message: MessageFacts) -> Reason:
    """Why the bot cannot act on the classifier's answer: the classifier's own reason when it
    abstained for one we know, else ``low_confidence``."""
    reason = UNCERTAINTY_REASONS.get(message.abstain_reason or "")
    if reason is Reason.unknown_topic and message.intent is not None:
        return Reason.low_confidence  # it did name an intent: not an unknown topic after all
    return reason or Reason.low_confidence


def clarify_candidates(
    policy: PolicyConfig,
    ranked: Sequence[tuple[str, float]],
    categories: Mapping[str, str | None],
) -> tuple[str, ...]:
    """The intents worth offering in a "did you mean ...?", best first (at most three).

    ``ranked`` is the classifier's best guess then its alternatives, as (intent,
    probability), best first; ``categories`` maps intents to their FAQ category. Only
    answerable intents (``policy.answerable_categories``) qualify, and only with a meaningful
    probability: at least ``MIN_CLARIFY_PROBABILITY`` and at least ``MIN_CLARIFY_SHARE`` of
    the best guess's.
    """
    if not ranked:
        return ()
    best = max(probability for _, probability in ranked)
    floor = max(MIN_CLARIFY_PROBABILITY, best * MIN_CLARIFY_SHARE)
    chosen: list[str] = []
    for intent, probability in ranked:
        if len(chosen) == MAX_CLARIFY_OPTIONS:
            break
        if (
            probability >= floor
            and intent not in chosen
            and categories.get(intent) in policy.answerable_categories
        ):
            chosen.append(intent)
    return tuple(chosen)


def _escalate(
    reasons: list[Reason], priority: int, policy: PolicyConfig, flags: list[Reason]
) -> Decision:
    unique = tuple(dict.fromkeys(reasons))
    return Decision(Action.escalate, unique, priority, account_flags=tuple(flags))


def sla_minutes(policy: PolicyConfig, priority: int) -> int:
    """First-response target for a priority (the lowest configured one if unknown)."""
    return policy.sla_minutes.get(priority, max(policy.sla_minutes.values()))


def describe_wait(minutes: int) -> str:
    """A first-response target in words for customers: "60 minutes", "4 hours", "1 hour"."""
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} hours"
    if minutes == 1:
        return "1 minute"
    return f"{minutes} minutes"
