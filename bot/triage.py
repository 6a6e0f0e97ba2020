"""The conversation flow: one inbound message in, stored, decided, replies queued.

``Triage.receive`` runs in one database transaction: it stores the message (deduplicated by
the channel's delivery id), decides with the classifier and the escalation policy, and queues
the replies in the outbox. Only after that transaction commits does a webhook acknowledge, so
a crash at any point loses nothing and a redelivery duplicates nothing.

A button tap counts only when it answers a prompt we sent in that conversation, once
(``handoff/prompts.py``): a rating, a "did this help?" vote or a "did you mean ...?" choice
that was never offered, or is repeated, is stored and acknowledged and does nothing else.
When the classifier hesitates between close intents, the bot asks which one was meant
(``bot/clarification.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot import clarification
from bot.answers import (
    CLARIFY_TEXT,
    CSAT_THANKS_TEXT,
    HELP_TEXT,
    LINK_FAILED_TEXT,
    LINKED_TEXT,
    NON_TEXT_TEXT,
    SLOW_DOWN_TEXT,
    THANKS_FEEDBACK_TEXT,
    WELCOME_TEXT,
    render_answer,
)
from bot.channels.base import Button, InboundMessage
from bot.handover import Customer, hand_over
from handoff import contacts, context, escalation, outbox, prompts, replies, sentiment
from handoff.db import write_lock
from handoff.hours import BusinessHours
from handoff.message_templates import TemplateCatalog
from handoff.models import (
    Author,
    ChannelIdentity,
    Contact,
    Conversation,
    ConversationMode,
    Direction,
    Feedback,
    Handoff,
    InboundEvent,
    Message,
    Prompt,
    User,
    utcnow,
)
from handoff.text import storable, storable_json

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    """What triage needs from the intent classifier."""

    def predict_one(self, text: str) -> Any: ...


@dataclass(frozen=True)
class IntentInfo:
    category: str
    answer: str | None
    title: str = ""  # a short label for buttons ("Password reset")


@dataclass(frozen=True)
class _Reading:
    """What was read from a customer's words."""

    prediction: Any = None  # classifier.Prediction, or None (no words, no model)
    negativity: float | None = None
    strategic_term: str | None = None


@dataclass
class ReceiveResult:
    """What happened to an inbound message."""

    duplicate: bool = False
    message_id: int | None = None
    conversation_id: int | None = None
    action: str = "stored"  # answered, clarified, escalated, forwarded, stored, throttled
    handoff_id: int | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class TriageConfig:
    policy: escalation.PolicyConfig
    intents: dict[str, IntentInfo]
    links: dict[str, str]
    text_limits: dict[str, int]
    reopen_window: timedelta = timedelta(hours=48)
    console_url: str = "http://127.0.0.1:8000/console"
    slack_webhook_url: str | None = None
    hours: BusinessHours = field(default_factory=BusinessHours)  # data/hours.yaml
    whatsapp_templates: TemplateCatalog = field(default_factory=TemplateCatalog)


class Triage:
    """The single pipeline every channel feeds (webhook, polling, web chat)."""

    def __init__(
        self,
        engine: Engine,
        predictor: Callable[[], Predictor | None],
        config: Callable[[], TriageConfig],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._predictor = predictor
        self._config = config
        self._on_commit = on_commit

    def receive(self, inbound: InboundMessage) -> ReceiveResult:
        """Store, decide and queue replies for one message, in one transaction."""
        with write_lock(self._engine), Session(self._engine, expire_on_commit=False) as session:
            if _already_stored(session, inbound.channel, inbound.external_id):
                return ReceiveResult(duplicate=True)
            try:
                result = self._receive(session, inbound)
                session.commit()
            except IntegrityError:
                session.rollback()
                if _already_stored(session, inbound.channel, inbound.external_id):
                    return ReceiveResult(duplicate=True)
                raise
        self._on_commit()
        return result

    def expire_clarifications(
        self, timeout: timedelta, *, now: datetime | None = None
    ) -> list[int]:
        """Hand clarifications unanswered for ``timeout`` to a person; the handoff ids."""
        opened = clarification.expire(self._engine, self._config(), timeout, now=now)
        if opened:
            self._on_commit()
        return opened

    def store_unhandled(
        self, channel: str, external_id: str | None, status: str, reason: str, body: str
    ) -> bool:
        """Keep a payload that did not become a message; False if already stored."""
        with write_lock(self._engine), Session(self._engine) as session:
            session.add(
                InboundEvent(
                    channel=channel,
                    external_id=external_id,
                    status=status,
                    reason=storable(reason[:500]),
                    body=storable(body),
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
        return True

    # -- the flow --------------------------------------------------------------------------

    def _receive(self, session: Session, inbound: InboundMessage) -> ReceiveResult:
        cfg = self._config()
        conversation, identity, contact = contacts.resolve_conversation(
            session,
            inbound.channel,
            storable(inbound.sender_id),
            storable(inbound.sender_name) if inbound.sender_name else None,
        )
        contacts.touch(conversation, identity)
        message = Message(
            conversation_id=conversation.id or 0,
            channel=inbound.channel,
            external_id=inbound.external_id,
            direction=Direction.inbound.value,
            author=Author.customer.value,
            kind=inbound.kind,
            text=storable(inbound.text),
            raw=storable_json(inbound.raw) or None,
        )
        session.add(message)
        session.add(conversation)
        session.add(identity)
        session.flush()
        result = ReceiveResult(message_id=message.id, conversation_id=conversation.id)
        flow = _Flow(session, cfg, conversation, contact, message, inbound, self._predictor())
        flow.run(result)
        return result


class _Flow:
    """The decision for one message (a short-lived helper holding the transaction's objects)."""

    def __init__(
        self,
        session: Session,
        cfg: TriageConfig,
        conversation: Conversation,
        contact: Contact,
        message: Message,
        inbound: InboundMessage,
        predictor: Predictor | None,
    ) -> None:
        self.s = session
        self.cfg = cfg
        self.conversation = conversation
        self.contact = contact
        self.message = message
        self.inbound = inbound
        self.predictor = predictor
        self.account = context.account_of(session, contact)

    def run(self, result: ReceiveResult) -> None:
        inbound = self.inbound
        if inbound.callback_id:
            self._queue_ack(inbound.callback_id)
        if inbound.kind == "command":
            self._command(result)
            return
        if inbound.kind == "callback":
            self._callback(result)
            return
        if self.conversation.mode == ConversationMode.human.value:
            result.action = "forwarded"
            result.handoff_id = self.conversation.active_handoff_id
            return
        if self._flooding():
            result.action = "throttled"  # stored and visible to agents, but not answered
            return
        if not has_words(inbound.text):
            # A sticker, a voice note, an uncaptioned photo or only emoji: the same on every
            # channel, a friendly request for words (nothing to classify, nobody to bother).
            self._reply(NON_TEXT_TEXT)
            result.action = "answered"
            return
        self._decide(result)

    def _flooding(self) -> bool:
        """True when this chat sent more messages than the policy's rate limit allows.

        The first message over the limit gets one notice per window; the rest are stored only.
        """
        limit = self.cfg.policy.rate_limit
        since = utcnow() - timedelta(seconds=limit.per_seconds)
        recent = contacts.count_recent_inbound(self.s, self.conversation.id or 0, since)
        if recent <= limit.max_messages:
            return False
        if recent == limit.max_messages + 1:
            self._reply(SLOW_DOWN_TEXT)
        return True

    def _command(self, result: ReceiveResult) -> None:
        command = self.inbound.command
        product = self.cfg.links.get("product_name", "")
        if command == "human":
            self._decide(result, requested_human=True)
            return
        if command == "start":
            self._start(self.inbound.command_args, product)
        else:
            self._reply(HELP_TEXT.format(product=product))
        result.action = "answered"

    def _start(self, token: str, product: str) -> None:
        name = f" {self.contact.name}" if self.contact.name else ""
        if not token:
            self._reply(WELCOME_TEXT.format(name=name, product=product))
            return
        linked = self.s.exec(select(Contact).where(Contact.link_token == token)).first()
        if linked is None:
            self._reply(LINK_FAILED_TEXT)
            return
        # The chat identity moves to the invited contact; the token is single-use.
        identity = self.s.get(ChannelIdentity, self.conversation.identity_id)
        if identity is not None:
            identity.contact_id = linked.id or 0
            self.s.add(identity)
        self.conversation.contact_id = linked.id or 0
        self.s.add(self.conversation)
        linked.link_token = None
        self.s.add(linked)
        self.contact = linked
        self.account = context.account_of(self.s, linked)
        account = self.account.name if self.account else product
        self._reply(
            LINKED_TEXT.format(name=f" {linked.name}" if linked.name else "", account=account)
        )

    def _callback(self, result: ReceiveResult) -> None:
        data = self.inbound.callback_data or ""
        kind, _, arg = data.partition(":")
        human_mode = self.conversation.mode == ConversationMode.human.value
        if kind == "human":  # asking for a person is always allowed (as /human is)
            if human_mode:
                result.action = "forwarded"
                return
            tap = self._take(data) if data == clarification.PERSON_DATA else None
            clarified = tap.prompt if tap is not None and tap.taken else None
            self._decide(result, requested_human=True, clarified=clarified)
            return
        tap = self._take(data) if kind in ("helpful", "csat", clarification.KIND) else None
        if tap is None or not tap.taken:
            # Never offered here, answered already, or an unknown or stale button: kept (and
            # acknowledged), nothing else.
            if tap is not None:
                logger.info("callback %r ignored: %s", kind, tap.status.replace("_", " "))
            result.action = "forwarded" if human_mode else "stored"
            return
        if kind == "helpful":
            verdict, _, intent = arg.partition(":")
            self._record_feedback("helpful" if verdict == "yes" else "didnt_help", intent=intent)
            if verdict == "yes":
                self._reply(THANKS_FEEDBACK_TEXT)
                result.action = "answered"
            elif human_mode:
                result.action = "forwarded"
            else:  # "No, talk to a person": an explicit request, about that answer's topic
                self._decide(result, requested_human=True, topic=intent or None)
        elif kind == "csat":
            self._rate(result, arg)
        elif human_mode:
            result.action = "forwarded"
        else:
            self._decide(result, chosen=arg, clarified=tap.prompt)

    def _take(self, data: str) -> prompts.Tap:
        return prompts.take(self.s, self.conversation.id or 0, data, self.message.id)

    def _rate(self, result: ReceiveResult, arg: str) -> None:
        score_text, _, handoff_text = arg.partition(":")
        if not (score_text.isdigit() and 1 <= int(score_text) <= 5):
            result.action = "stored"
            return
        handoff_id = int(handoff_text) if handoff_text.isdigit() else None
        rated = self.s.get(Handoff, handoff_id) if handoff_id is not None else None
        if rated is None or rated.conversation_id != self.conversation.id:
            handoff_id = None  # stale or foreign id: keep the score, not the link
        self._record_feedback("csat", score=int(score_text), handoff_id=handoff_id)
        self._reply(CSAT_THANKS_TEXT)
        result.action = "answered"

    def _record_feedback(
        self,
        kind: str,
        *,
        intent: str | None = None,
        score: int | None = None,
        handoff_id: int | None = None,
    ) -> None:
        self.s.add(
            Feedback(
                conversation_id=self.conversation.id or 0,
                account_id=self.account.id if self.account else None,
                handoff_id=handoff_id,
                kind=kind,
                score=score,
                intent=intent or None,
            )
        )

    def _decide(
        self,
        result: ReceiveResult,
        *,
        requested_human: bool = False,
        topic: str | None = None,
        chosen: str | None = None,
        clarified: Prompt | None = None,
    ) -> None:
        """Decide on this message. ``chosen``: the intent the customer tapped in answer to
        the clarification ``clarified`` (which a "Talk to a person" tap also passes);
        ``topic``: the intent of the answer a "No, talk to a person" tap refers to."""
        # Whatever the customer does next closes a pending "did you mean ...?".
        pending = prompts.close_open(
            self.s, self.conversation.id or 0, clarification.KIND, answer_message_id=self.message.id
        )
        reading = self._read()
        prediction = reading.prediction
        intent: str | None = None
        confidence = 0.0
        abstain_reason: str | None = None
        if chosen is not None:  # the customer told us what they meant: as sure as it gets
            intent, confidence = chosen, 1.0
            self.message.intent = chosen
            self.s.add(self.message)
        elif prediction is not None:
            intent, confidence = prediction.intent, float(prediction.confidence)
            abstain_reason = prediction.reason
        if clarified is not None:
            abstain_reason = escalation.Reason.ambiguous.value  # what we asked them about
        info = self.cfg.intents.get(intent) if intent else None
        facts = escalation.MessageFacts(
            intent=intent,
            category=info.category if info else None,
            confidence=confidence,
            negativity=reading.negativity,
            requested_human=requested_human,
            same_intent_recent=self._same_intent_recent(intent, clarified),
            strategic_term=reading.strategic_term,
            abstain_reason=abstain_reason,
            candidates=clarification.candidates(self.cfg.policy, self.cfg.intents, prediction),
            after_clarification=bool(pending),
        )
        decision = escalation.decide(
            self.cfg.policy, facts, context.account_facts(self.account), utcnow().date()
        )
        if decision.action is escalation.Action.clarify:
            self._clarify(result, decision, prediction)
            return
        if decision.escalate or info is None or info.answer is None:
            top = prediction.top_intent if prediction is not None else None
            source = clarification.source_of(self.s, clarified) if clarified else None
            self._escalate(
                result,
                decision,
                intent
                or topic
                or top
                or (clarification.top_intent_of(clarified) if clarified else None),
                customer_text=source.text if source is not None else self.message.text,
                trigger_message_id=source.id if source is not None else self.message.id,
            )
            return
        text = render_answer(info.answer, self._variables())
        buttons: tuple[Button, ...] = ()
        if info.category == "faq":
            buttons = (
                Button("Yes, solved", f"helpful:yes:{intent}"),
                Button("No, talk to a person", f"helpful:no:{intent}"),
            )
        self._reply(text, buttons=buttons, intent=intent)
        result.action = "answered"

    def _read(self) -> _Reading:
        """Classify a readable message and score its sentiment and strategic terms (both kept
        in the message's raw data for agents); nothing to read in a tap or a command."""
        # Text, an edit, or the caption of a photo or document ("this error when I log in").
        readable = self.inbound.kind not in ("command", "callback") and bool(
            self.message.text.strip()
        )
        if not readable:
            return _Reading()
        prediction = None
        if self.predictor is not None:
            prediction = self.predictor.predict_one(self.message.text)
            self.message.intent = prediction.top_intent
            self.message.confidence = float(prediction.confidence)
        negativity = sentiment.negativity(self.message.text)
        term = escalation.strategic_term(self.cfg.policy, self.message.text)
        extra: dict[str, Any] = {"sentiment": {"negativity": negativity}}
        if term:  # shown to agents: why a plain-looking question reached them
            extra["strategic_term"] = term
        self.message.raw = {**(self.message.raw or {}), **extra}
        self.s.add(self.message)
        return _Reading(prediction, negativity, term)

    def _same_intent_recent(self, intent: str | None, clarified: Prompt | None) -> int:
        if intent is None:
            return 0
        since = utcnow() - timedelta(days=self.cfg.policy.repeated_contact.window_days)
        source = clarified.details.get("source_message_id") if clarified else None
        return contacts.count_recent_intent(
            self.s,
            self.contact.id or 0,
            intent,
            since,
            self.message.id or 0,
            also_exclude=source if isinstance(source, int) else None,
        )

    def _clarify(
        self, result: ReceiveResult, decision: escalation.Decision, prediction: Any
    ) -> None:
        buttons = clarification.build_buttons(decision.candidates, self.cfg.intents)
        self._reply(
            CLARIFY_TEXT,
            buttons=buttons,
            prompt_kind=clarification.KIND,
            prompt_details=clarification.details(
                decision.candidates, self.message, prediction.top_intent if prediction else None
            ),
        )
        result.action = "clarified"
        result.reasons = [r.value for r in decision.reasons]

    def _escalate(
        self,
        result: ReceiveResult,
        decision: escalation.Decision,
        intent: str | None,
        *,
        customer_text: str,
        trigger_message_id: int | None,
    ) -> None:
        handoff = hand_over(
            self.s,
            self.cfg,
            Customer(self.conversation, self.contact, self.account),
            decision,
            intent=intent,
            customer_text=customer_text,
            trigger_message_id=trigger_message_id,
        )
        result.action = "escalated"
        result.handoff_id = handoff.id
        result.reasons = [r.value for r in decision.reasons]

    def _variables(self) -> dict[str, Any]:
        variables: dict[str, Any] = dict(self.cfg.links)
        variables["contact_name"] = self.contact.name
        if self.account is not None:
            variables["account_name"] = self.account.name
            variables["plan"] = self.account.plan
            csm = self.s.get(User, self.account.csm_id) if self.account.csm_id else None
            variables["csm_name"] = csm.name if csm else None
        return variables

    def _reply(
        self,
        text: str,
        *,
        buttons: tuple[Button, ...] = (),
        intent: str | None = None,
        prompt_kind: str | None = None,
        prompt_details: dict[str, Any] | None = None,
    ) -> None:
        replies.queue_reply(
            self.s,
            self.conversation,
            text,
            author=Author.bot.value,
            buttons=[{"text": b.text, "data": b.data} for b in buttons],
            intent=intent,
            text_limits=self.cfg.text_limits,
            prompt_kind=prompt_kind,
            prompt_details=prompt_details,
        )

    def _queue_ack(self, callback_id: str) -> None:
        outbox.enqueue(
            self.s,
            kind="callback_ack",
            channel=self.inbound.channel,
            target=callback_id,
            payload={"callback_id": callback_id},
            ordering_key=f"ack:{callback_id}",
            dedupe_key=f"ack:{self.inbound.channel}:{callback_id}",
        )


def has_words(text: str) -> bool:
    """True when ``text`` has a letter or a digit: something to classify. Emoji, punctuation
    and blanks alone are not a question in words."""
    return any(ch.isalnum() for ch in text)


def _already_stored(session: Session, channel: str, external_id: str) -> bool:
    return (
        session.exec(
            select(Message.id)
            .where(Message.channel == channel)
            .where(Message.external_id == external_id)
        ).first()
        is not None
    )
