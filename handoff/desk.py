"""The agent desk: everything a person does with the queue, with authorization enforced here
(the rules themselves live in ``handoff/access.py``).

The REST API and the web console both call these functions, so a rule holds everywhere:

* admins and agents see and work every handoff;
* a CSM sees and works only the handoffs of accounts they own — another account's handoff is
  reported as not found (ids are not an oracle).

Functions take an open ``Session`` and leave committing to the caller, except where noted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from handoff import access, activity, canned, contacts, context, outbox, queue, replies
from handoff.access import Principal
from handoff.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from handoff.models import (
    Account,
    Author,
    ChannelIdentity,
    Contact,
    Conversation,
    Direction,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    Message,
    Role,
    User,
    utcnow,
)

logger = logging.getLogger(__name__)

MAX_REPLY_CHARS = 20_000
RESOLUTION_CODES = (
    "answered",
    "fixed",
    "workaround",
    "escalated_to_engineering",
    "duplicate",
    "no_response",
    "other",
)
CSAT_TEXT = "How did we do? Please rate this conversation from 1 (poor) to 5 (excellent)."
MAX_CONTACT_MATCHES = 20


class Unanswered(Conflict):
    """A resolve without ``confirm`` while the customer's last message has no reply."""


class AssignedToOther(Conflict):
    """A reply without ``confirm`` to a handoff someone else is assigned."""


class ContactNotFound(NotFound):
    """No such contact, or not one the principal may link chats to (the same answer)."""


@dataclass
class HandoffView:
    """A queue row: the handoff plus who and what it is about."""

    handoff: Handoff
    contact_name: str | None
    account_name: str | None
    account_tier: str | None
    channel: str
    assignee_name: str | None
    last_customer_text: str | None


@dataclass
class HandoffDetail:
    handoff: Handoff
    conversation: Conversation
    contact: Contact
    account: Account | None
    csm: User | None
    assignee: User | None
    transcript: list[Message] = field(default_factory=list)
    events: list[HandoffEvent] = field(default_factory=list)
    # message id -> why that reply never reached the customer (dead-lettered or failed receipt)
    undelivered: dict[int, str] = field(default_factory=dict)
    # message id -> the data of the button that message tapped (for "rated 5/5", ...)
    taps: dict[int, str] = field(default_factory=dict)

    @property
    def last_customer_message(self) -> Message | None:
        return last_customer_message(self.transcript)

    @property
    def last_customer_text(self) -> str | None:
        """The customer's last message as the queue shows it (a tap: what they did)."""
        last = self.last_customer_message
        return customer_text(last, self.taps.get(last.id or 0)) if last else None

    @property
    def awaits_reply(self) -> bool:
        """Whether the customer's last message has no later reply from an agent or the bot."""
        return awaits_reply(self.transcript)


def last_customer_message(messages: list[Message]) -> Message | None:
    return next((m for m in reversed(messages) if m.direction == Direction.inbound.value), None)


def customer_text(message: Message, tapped: str | None = None) -> str:
    """A customer message in words: its text, or what they did (a tap, a deep link)."""
    return activity.describe(message.kind, message.text, tapped) or message.text


def awaits_reply(messages: list[Message]) -> bool:
    """True when the last customer message is later than every agent or bot reply.

    A reply is an agent's message or the bot's answer to a question (it carries the intent it
    answered); the bot's "a person will get back to you", system messages (the CSAT question)
    and private notes are not.
    """
    last = last_customer_message(messages)
    if last is None:
        return False
    return not any((m.id or 0) > (last.id or 0) and _is_reply(m) for m in messages)


def _is_reply(message: Message) -> bool:
    if message.direction != Direction.outbound.value:
        return False
    if message.author == Author.agent.value:
        return True
    return message.author == Author.bot.value and bool(message.intent)


# --------------------------------------------------------------------------- visibility
def _visible(stmt: Any, principal: Principal) -> Any:
    return access.visible_handoffs(stmt, principal)


def _load(session: Session, principal: Principal, handoff_id: int) -> Handoff:
    stmt = _visible(select(Handoff).where(Handoff.id == handoff_id), principal)
    handoff = session.exec(stmt).first()
    if handoff is None:
        raise NotFound(f"handoff {handoff_id} not found")
    return handoff


def _require_worker(principal: Principal) -> None:
    access.require_staff(principal)


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"user {user_id} not found")
    return user


# ------------------------------------------------------------------------------ reading
def list_handoffs(
    session: Session,
    principal: Principal,
    *,
    statuses: list[str] | None = None,
    priority: int | None = None,
    reason: str | None = None,
    channel: str | None = None,
    assignee_id: int | None = None,
    account_id: int | None = None,
    limit: int = 200,
) -> list[HandoffView]:
    """Handoffs visible to ``principal``: most urgent first (priority, then waiting time)."""
    statuses = statuses or [HandoffStatus.waiting.value, HandoffStatus.assigned.value]
    stmt = (
        select(Handoff, Conversation, Contact, Account)
        .join(Conversation, col(Conversation.id) == col(Handoff.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .join(Account, col(Account.id) == col(Handoff.account_id), isouter=True)
        .where(col(Handoff.status).in_(statuses))
    )
    if priority is not None:
        stmt = stmt.where(Handoff.priority == priority)
    if channel is not None:
        stmt = stmt.where(Conversation.channel == channel)
    if assignee_id is not None:
        stmt = stmt.where(Handoff.assignee_id == assignee_id)
    if account_id is not None:
        stmt = stmt.where(Handoff.account_id == account_id)
    stmt = _visible(stmt, principal).order_by(
        col(Handoff.priority), col(Handoff.waiting_since), col(Handoff.id)
    )
    rows = session.exec(stmt.limit(min(max(limit, 1), 1000) * (4 if reason else 1))).all()
    users = {u.id: u.name for u in session.exec(select(User)).all()}
    views: list[HandoffView] = []
    for handoff, conversation, contact, account in rows:
        if reason and reason not in (handoff.reasons or []):
            continue
        last_message = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id)
            .where(Message.direction == Direction.inbound.value)
            .order_by(col(Message.id).desc())
        ).first()
        last = None
        if last_message is not None:
            taps = activity.tapped_data(session, [last_message.id or 0])
            last = customer_text(last_message, taps.get(last_message.id or 0))
        views.append(
            HandoffView(
                handoff=handoff,
                contact_name=contact.name,
                account_name=account.name if account else None,
                account_tier=account.tier if account else None,
                channel=conversation.channel,
                assignee_name=users.get(handoff.assignee_id) if handoff.assignee_id else None,
                last_customer_text=last,
            )
        )
        if len(views) >= limit:
            break
    return views


def get_handoff(session: Session, principal: Principal, handoff_id: int) -> HandoffDetail:
    """One handoff with its conversation, contact, live account, transcript and history."""
    handoff = _load(session, principal, handoff_id)
    conversation = session.get(Conversation, handoff.conversation_id)
    if conversation is None:
        raise NotFound(f"handoff {handoff_id} has no conversation")
    contact = session.get(Contact, conversation.contact_id)
    if contact is None:
        raise NotFound(f"handoff {handoff_id} has no contact")
    account = session.get(Account, handoff.account_id) if handoff.account_id else None
    csm = session.get(User, account.csm_id) if account and account.csm_id else None
    assignee = session.get(User, handoff.assignee_id) if handoff.assignee_id else None
    messages = transcript(session, conversation.id or 0)
    return HandoffDetail(
        handoff=handoff,
        conversation=conversation,
        contact=contact,
        account=account,
        csm=csm,
        assignee=assignee,
        transcript=messages,
        events=queue.history(session, handoff.id or 0),
        undelivered=outbox.delivery_failures(session, [m.id or 0 for m in messages]),
        taps=activity.tapped_data(session, [m.id or 0 for m in messages if m.kind == "callback"]),
    )


def transcript(session: Session, conversation_id: int, limit: int = 500) -> list[Message]:
    """The conversation's messages (customer, bot, agents, private notes), oldest first."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.id).desc())
        .limit(limit)
    )
    return list(reversed(session.exec(stmt).all()))


# ---------------------------------------------------------------------------- actions
def claim(
    session: Session, principal: Principal, handoff_id: int, *, version: int | None = None
) -> Handoff:
    """Take a waiting handoff. Two agents at once: one wins, the other gets Conflict."""
    _require_worker(principal)
    handoff = _load(session, principal, handoff_id)
    if version is not None and handoff.version != version:
        raise Conflict(f"handoff {handoff_id} changed since you loaded it; reload")
    if handoff.status == HandoffStatus.assigned.value:
        if handoff.assignee_id == principal.user_id:
            return handoff
        raise Conflict(f"handoff {handoff_id} is already taken by someone else")
    return queue.transition(
        session, handoff, "claim", principal.actor, assignee_id=principal.user_id
    )


def take_next(session: Session, principal: Principal) -> Handoff | None:
    """Claim the most urgent waiting handoff visible to ``principal`` (None if none).

    On PostgreSQL candidates are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent agents
    each get a different one; on SQLite the guarded update in ``queue.transition`` decides and
    a loser simply tries the next candidate.
    """
    _require_worker(principal)
    stmt = _visible(
        select(Handoff).where(Handoff.status == HandoffStatus.waiting.value), principal
    ).order_by(col(Handoff.priority), col(Handoff.waiting_since), col(Handoff.id))
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        handoff = session.exec(stmt.limit(1).with_for_update(skip_locked=True)).first()
        if handoff is None:
            return None
        return queue.transition(
            session, handoff, "claim", principal.actor, assignee_id=principal.user_id
        )
    for handoff in session.exec(stmt.limit(20)).all():
        try:
            return queue.transition(
                session, handoff, "claim", principal.actor, assignee_id=principal.user_id
            )
        except Conflict:  # another agent took it first; the failed update wrote nothing
            continue
    return None


def _owned(session: Session, principal: Principal, handoff_id: int) -> Handoff:
    """A handoff the principal may act on as its owner (admins may act on any)."""
    _require_worker(principal)
    handoff = _load(session, principal, handoff_id)
    if handoff.status != HandoffStatus.assigned.value:
        raise Conflict(f"handoff {handoff_id} is {handoff.status}, not assigned")
    if not access.may_override_assignee(principal, handoff):
        raise PermissionDenied(f"handoff {handoff_id} is assigned to someone else")
    return handoff


def release(
    session: Session, principal: Principal, handoff_id: int, reason: str | None = None
) -> Handoff:
    handoff = _owned(session, principal, handoff_id)
    return queue.transition(session, handoff, "release", principal.actor, reason=reason)


def transfer(
    session: Session,
    principal: Principal,
    handoff_id: int,
    to_user_id: int,
    reason: str | None = None,
) -> Handoff:
    handoff = _owned(session, principal, handoff_id)
    target = _user(session, to_user_id)
    if target.role not in (Role.agent.value, Role.admin.value, Role.csm.value):
        raise InvalidInput(f"{target.name} cannot own handoffs")
    if target.role == Role.csm.value:
        account = session.get(Account, handoff.account_id) if handoff.account_id else None
        if account is None or account.csm_id != target.id:
            raise InvalidInput(f"{target.name} is not the CSM of this account")
    return queue.transition(
        session, handoff, "transfer", principal.actor, assignee_id=target.id, reason=reason
    )


def _clean_text(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(f"{what} is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise InvalidInput(f"{what} is longer than {MAX_REPLY_CHARS} characters")
    return text


def reply_target(
    session: Session, principal: Principal, handoff_id: int, *, confirm: bool = False
) -> tuple[Handoff, Conversation]:
    """The handoff a reply goes out on and its conversation: a waiting handoff is claimed
    first; the customer must be reachable. A handoff assigned to someone else needs
    ``confirm`` (else :class:`AssignedToOther`, nothing written); it stays theirs."""
    handoff = _load(session, principal, handoff_id)
    if handoff.status == HandoffStatus.waiting.value:
        handoff = claim(session, principal, handoff_id)
    if handoff.status == HandoffStatus.assigned.value and handoff.assignee_id != principal.user_id:
        _require_worker(principal)
        if not confirm:
            owner = session.get(User, handoff.assignee_id) if handoff.assignee_id else None
            raise AssignedToOther(
                f"handoff {handoff_id} is assigned to {owner.name if owner else 'someone else'}; "
                "confirm to reply anyway"
            )
    else:
        handoff = _owned(session, principal, handoff_id)
    conversation = session.get(Conversation, handoff.conversation_id)
    if conversation is None:
        raise NotFound(f"handoff {handoff_id} has no conversation")
    contact = session.get(Contact, conversation.contact_id)
    if contact is not None and contact.unreachable:
        raise Conflict("the customer can no longer be reached on this channel (blocked us)")
    return handoff, conversation


def reply(
    session: Session,
    principal: Principal,
    handoff_id: int,
    text: str,
    *,
    text_limits: dict[str, int] | None = None,
    canned_reply_id: int | None = None,
    confirm: bool = False,
) -> Message:
    """Send a reply to the customer through their channel (claims a waiting handoff first).

    ``canned_reply_id``: the reply started from that canned reply; its use is counted.
    ``confirm``: reply even though the handoff is assigned to someone else.
    """
    text = _clean_text(text, "the reply")
    handoff, conversation = reply_target(session, principal, handoff_id, confirm=confirm)
    identity = session.get(ChannelIdentity, conversation.identity_id)
    message = replies.queue_reply(
        session,
        conversation,
        text,
        author=Author.agent.value,
        author_user_id=principal.user_id,
        text_limits=text_limits,
    )
    if canned_reply_id is not None:
        canned.record_use(session, principal, canned_reply_id, message.id)
    queue.mark_first_response(session, handoff)
    logger.info(
        "agent %s replied on handoff %s (%s)",
        principal.user_id,
        handoff_id,
        identity.channel if identity else "?",
    )
    return message


def add_note(session: Session, principal: Principal, handoff_id: int, text: str) -> Message:
    """A private note on the conversation: visible to staff, never sent to the customer."""
    _require_worker(principal)
    text = _clean_text(text, "the note")
    handoff = _load(session, principal, handoff_id)
    conversation = session.get(Conversation, handoff.conversation_id)
    if conversation is None:
        raise NotFound(f"handoff {handoff_id} has no conversation")
    note = Message(
        conversation_id=conversation.id or 0,
        channel=conversation.channel,
        direction=Direction.internal.value,
        author=Author.agent.value,
        author_user_id=principal.user_id,
        kind="note",
        text=text,
    )
    session.add(note)
    session.flush()
    return note


def resolve(
    session: Session,
    principal: Principal,
    handoff_id: int,
    resolution_code: str,
    *,
    ask_csat: bool = True,
    confirm: bool = True,
    text_limits: dict[str, int] | None = None,
) -> Handoff:
    """Close a handoff with a resolution code and (by default) ask the customer for a 1-5 CSAT.

    Without ``confirm``, a handoff whose customer's last message has no reply yet is not
    resolved: :class:`Unanswered` (nothing written), so the caller can ask first.
    """
    if resolution_code not in RESOLUTION_CODES:
        raise InvalidInput(f"resolution code must be one of {', '.join(RESOLUTION_CODES)}")
    handoff = _owned(session, principal, handoff_id)
    if not confirm and awaits_reply(transcript(session, handoff.conversation_id)):
        raise Unanswered(
            f"the customer's last message on handoff {handoff_id} has no reply yet; "
            "confirm to resolve anyway"
        )
    handoff = queue.transition(
        session, handoff, "resolve", principal.actor, resolution_code=resolution_code
    )
    if ask_csat:
        conversation = session.get(Conversation, handoff.conversation_id)
        if conversation is None:
            raise NotFound(f"handoff {handoff_id} has no conversation")
        replies.queue_reply(
            session,
            conversation,
            CSAT_TEXT,
            author=Author.system.value,
            buttons=[{"text": f"{n}", "data": f"csat:{n}:{handoff.id}"} for n in range(1, 6)],
            text_limits=text_limits,
        )
    return handoff


def return_to_bot(
    session: Session, principal: Principal, handoff_id: int, reason: str | None = None
) -> Handoff:
    """Hand the conversation back to the bot (from waiting or assigned)."""
    _require_worker(principal)
    handoff = _load(session, principal, handoff_id)
    if handoff.status == HandoffStatus.assigned.value and not access.may_override_assignee(
        principal, handoff
    ):
        raise PermissionDenied(f"handoff {handoff_id} is assigned to someone else")
    return queue.transition(session, handoff, "return_to_bot", principal.actor, reason=reason)


def link_contact(session: Session, principal: Principal, handoff_id: int, email: str) -> Contact:
    """Link the chat user of a handoff to a known contact by email (agent linking).

    See :func:`link_to_contact`; an email the principal may not link to is answered exactly
    like an unknown one (whether it exists is not told), and nothing is written.
    """
    _require_worker(principal)
    email = (email or "").strip().lower()
    target = session.exec(
        select(Contact).where(or_(col(Contact.email) == email, col(Contact.email) == email.upper()))
    ).first()
    if target is None or not access.may_link_to(session, principal, target):
        _load(session, principal, handoff_id)  # an unknown handoff is still "not found"
        raise ContactNotFound(f"no contact with email {email}")
    return link_to_contact(session, principal, handoff_id, target.id or 0)


def link_to_contact(
    session: Session, principal: Principal, handoff_id: int, contact_id: int
) -> Contact:
    """Tie the chat of a handoff to a known contact (a web chat visitor, say).

    The conversation, its channel identity and the handoff move to the contact and its
    account, and the handoff's CS snapshot is taken again, so the account's context applies
    from now on. A CSM may only link to a contact of an account they own; any other contact
    is reported as not found, and nothing is written.
    """
    _require_worker(principal)
    handoff = _load(session, principal, handoff_id)
    target = session.get(Contact, contact_id)
    if target is None or not access.may_link_to(session, principal, target):
        raise ContactNotFound(f"contact {contact_id} not found")
    conversation = session.get(Conversation, handoff.conversation_id)
    if conversation is None:
        raise NotFound(f"handoff {handoff_id} has no conversation")
    identity = session.get(ChannelIdentity, conversation.identity_id)
    if identity is not None:
        identity.contact_id = target.id or 0
        session.add(identity)
    conversation.contact_id = target.id or 0
    handoff.account_id = target.account_id
    account = session.get(Account, target.account_id) if target.account_id else None
    handoff.context = context.snapshot(session, account, target)
    session.add(conversation)
    session.add(handoff)
    session.flush()
    logger.info("%s linked handoff %s to contact %s", principal.user_id, handoff_id, target.id)
    return target


@dataclass
class ContactMatch:
    contact: Contact
    account_name: str | None


def find_contacts(session: Session, principal: Principal, query: str) -> list[ContactMatch]:
    """Contacts whose email or name contains ``query`` (case-insensitive), among those the
    principal may link to (a CSM: their accounts' contacts); at most 20, by name."""
    _require_worker(principal)
    words = (query or "").strip().lower()
    if len(words) < 2:
        return []
    pattern = "%" + words.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
    stmt = (
        select(Contact, Account)
        .join(Account, col(Account.id) == col(Contact.account_id), isouter=True)
        .where(
            or_(
                func.lower(col(Contact.email)).like(pattern, escape="\\"),
                func.lower(col(Contact.name)).like(pattern, escape="\\"),
            )
        )
    )
    stmt = access.visible_contacts(stmt, principal)
    rows = session.exec(
        stmt.order_by(col(Contact.name), col(Contact.id)).limit(MAX_CONTACT_MATCHES)
    )
    return [ContactMatch(c, a.name if a else None) for c, a in rows.all()]


def issue_link_token(session: Session, principal: Principal, contact_id: int) -> str:
    """A Telegram link token for a contact the principal may link chats to (else not found)."""
    _require_worker(principal)
    target = session.get(Contact, contact_id)
    if target is None or not access.may_link_to(session, principal, target):
        raise ContactNotFound(f"contact {contact_id} not found")
    return contacts.issue_link_token(session, contact_id)


def waiting_seconds(handoff: Handoff, now: datetime | None = None) -> float:
    return ((now or utcnow()) - handoff.waiting_since).total_seconds()
