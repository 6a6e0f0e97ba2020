"""Clarify instead of guessing: the "Did you mean one of these?" question and its time limit.

When the classifier hesitates between close intents (``ambiguous``) and the escalation
policy says ``clarify``, the bot asks with one button per candidate intent (its FAQ
``title``) and a "Talk to a person" button. The question is recorded as a ``clarify``
prompt (``handoff/prompts.py``) whose details name the candidates, the customer's message
and the classifier's best guess. What happens next (``bot/triage.py``):

* a tap on a candidate answers that FAQ as a confident prediction would (the policy still
  applies, e.g. to a VIP or at-risk account);
* "Talk to a person" hands over with ``requested_human`` and ``ambiguous``;
* a new message closes the question: a clear one is answered, another ambiguous one hands
  over with ``ambiguous``;
* no answer within ``CLARIFY_TIMEOUT_SECONDS``: :func:`expire` hands over with ``ambiguous``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from bot.answers import TALK_TO_PERSON_TEXT
from bot.channels.base import Button
from bot.handover import Customer, HandoverConfig, hand_over
from classifier.faq import title_from_name
from handoff import context, escalation, prompts
from handoff.db import write_lock
from handoff.models import Contact, Conversation, ConversationMode, Message, Prompt, utcnow

logger = logging.getLogger(__name__)

KIND = prompts.CLARIFY
PERSON_DATA = "human:clarify"  # the "Talk to a person" button of a clarification


class Titled(Protocol):
    @property
    def title(self) -> str: ...


class Categorized(Protocol):
    @property
    def category(self) -> str: ...


def candidates(
    policy: escalation.PolicyConfig, intents: Mapping[str, Categorized], prediction: Any
) -> tuple[str, ...]:
    """The answerable intents worth offering for an ambiguous ``classifier.Prediction`` (none
    for any other): its best guess and alternatives, by :func:`escalation.clarify_candidates`."""
    if prediction is None or prediction.reason != escalation.Reason.ambiguous.value:
        return ()
    ranked = [(str(prediction.top_intent), float(prediction.confidence))]
    ranked += [(str(name), float(p)) for name, p in prediction.alternatives]
    categories = {name: info.category for name, info in intents.items()}
    return escalation.clarify_candidates(policy, ranked, categories)


def choice_data(intent: str) -> str:
    """The button data of a candidate intent."""
    return f"{KIND}:{intent}"


def build_buttons(candidates: Sequence[str], intents: Mapping[str, Titled]) -> tuple[Button, ...]:
    """One button per candidate (its title), then "Talk to a person"."""
    buttons = [Button(_title(intents.get(name), name), choice_data(name)) for name in candidates]
    return (*buttons, Button(TALK_TO_PERSON_TEXT, PERSON_DATA))


def _title(info: Titled | None, name: str) -> str:
    return info.title if info is not None and info.title else title_from_name(name)


def details(candidates: Sequence[str], source: Message, top_intent: str | None) -> dict[str, Any]:
    """What the prompt remembers: the candidates, the customer's message, the best guess."""
    return {
        "candidates": list(candidates),
        "source_message_id": source.id,
        "top_intent": top_intent,
    }


def source_of(session: Session, prompt: Prompt) -> Message | None:
    """The customer's message that the clarification asked about."""
    source_id = prompt.details.get("source_message_id")
    return session.get(Message, source_id) if isinstance(source_id, int) else None


def top_intent_of(prompt: Prompt) -> str | None:
    top = prompt.details.get("top_intent")
    return top if isinstance(top, str) else None


def expire(
    engine: Engine,
    cfg: HandoverConfig,
    timeout: timedelta,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Hand every clarification unanswered for ``timeout`` to a person (reason ``ambiguous``).

    Safe with several instances: each prompt is closed by one guarded update
    (:func:`handoff.prompts.claim_unanswered`), and its handover is in the same transaction.
    Returns the ids of the handoffs opened or reopened.
    """
    moment = now or utcnow()
    opened: list[int] = []
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        for prompt in prompts.claim_unanswered(session, KIND, moment - timeout):
            handoff_id = _hand_over_unanswered(session, cfg, prompt, moment.date())
            if handoff_id is not None:
                opened.append(handoff_id)
        session.commit()
    if opened:
        logger.info("%d unanswered clarification(s) handed to a person", len(opened))
    return opened


def _hand_over_unanswered(
    session: Session, cfg: HandoverConfig, prompt: Prompt, today: date
) -> int | None:
    conversation = session.get(Conversation, prompt.conversation_id)
    if conversation is None or conversation.mode == ConversationMode.human.value:
        return None  # a person has it already
    contact = session.get(Contact, conversation.contact_id)
    if contact is None:
        return None
    account = context.account_of(session, contact)
    facts = escalation.MessageFacts(
        intent=None,
        category=None,
        confidence=0.0,
        abstain_reason=escalation.Reason.ambiguous.value,
        after_clarification=True,
    )
    decision = escalation.decide(cfg.policy, facts, context.account_facts(account), today)
    source = source_of(session, prompt)
    handoff = hand_over(
        session,
        cfg,
        Customer(conversation, contact, account),
        decision,
        intent=top_intent_of(prompt),
        customer_text=source.text if source is not None else "",
        trigger_message_id=source.id if source is not None else None,
    )
    return handoff.id
