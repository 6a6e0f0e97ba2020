"""Web chat: the channel that needs no provider (``GET /chat``), inbound and outbound sides.

Inbound: the widget POSTs ``{"client_id", "text", "callback_data"}``; :func:`parse_post`
validates it and normalizes it into an :class:`InboundMessage`. Invalid input (not JSON, a
bad ``client_id``, an empty or over-long text) is refused with a 4xx and *not* stored: unlike
a provider's webhook, the sender is our own widget waiting for the answer, so the refusal is
never silent (the widget shows it and keeps the text), and an anonymous endpoint should not
let anyone fill the dead-letter table with junk.

Visitors are anonymous: a random visitor id lives in an HttpOnly, SameSite=Lax cookie signed
with HMAC-SHA256 (:class:`VisitorCookies`); a cookie whose signature does not verify is
ignored and a new visitor id is issued. The visitor id is the conversation's address
(``sender_id``); deduplication is per visitor (``external_id = visitor:client_id``) so one
visitor can never make another's message look like a retry.

Outbound: a reply is already stored as an outbound ``Message`` by the pipeline, so
:class:`WebChatSender` only wakes the visitor's live listeners (:class:`VisitorHub`); the
stream then reads new messages from the database by id, so nothing is lost across reconnects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from bot.channels.base import InboundMessage, OutboundMessage, SendResult
from handoff.models import (
    Author,
    ChannelIdentity,
    Conversation,
    Direction,
    Message,
    OutboxEntry,
    User,
)

logger = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT = 10_000
MAX_CALLBACK = 64
COOKIE_NAME = "triagebot_chat"
PAGE = 200  # messages per read
COOKIE_MAX_AGE = 30 * 24 * 3600
COMMANDS = frozenset({"start", "help", "human"})
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{24}")


class InvalidPost(ValueError):
    """The widget's POST is not acceptable; ``problems`` are readable sentences."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_post(data: object, visitor_id: str) -> InboundMessage:
    """Validate a decoded POST body and normalize it for the pipeline (raises InvalidPost)."""
    if not isinstance(data, dict):
        raise InvalidPost(["the body must be a JSON object"])
    problems: list[str] = []
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        problems.append("client_id must be 8-64 characters of A-Z, a-z, 0-9, '-' and '_'")
    text = data.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        problems.append("text must be a string")
        text = ""
    text = text.strip()
    if len(text) > MAX_TEXT:
        problems.append(f"text is longer than {MAX_TEXT} characters ({len(text)})")
    callback = data.get("callback_data")
    if callback is not None and (
        not isinstance(callback, str)
        or not 1 <= len(callback) <= MAX_CALLBACK
        or not callback.isprintable()
    ):
        problems.append(f"callback_data must be 1-{MAX_CALLBACK} printable characters")
    if not problems and not text and not callback:
        problems.append("the message is empty: send a non-blank text or a button's callback_data")
    if problems:
        raise InvalidPost(problems)
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "external_id": f"{visitor_id}:{client_id}",
        "sender_id": visitor_id,
        "raw": {"client_id": client_id},
    }
    if callback:
        # The widget sends the button's label as text, which is what the transcript shows.
        return InboundMessage(text=text, kind="callback", callback_data=callback, **common)
    head, _, args = text.partition(" ")
    if head.startswith("/") and head[1:].lower() in COMMANDS:
        return InboundMessage(
            text=text, kind="command", command=head[1:].lower(), command_args=args.strip(), **common
        )
    return InboundMessage(text=text, kind="text", **common)


def client_id_of(external_id: str | None) -> str | None:
    """The widget's client id back from a stored ``external_id`` (``visitor:client_id``)."""
    if not external_id or ":" not in external_id:
        return None
    return external_id.partition(":")[2]


class VisitorCookies:
    """Issues and verifies the signed visitor cookie (``<visitor id>.<HMAC-SHA256>``)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the web chat secret must be at least 16 characters")
        self._key = secret.encode()

    def issue(self) -> tuple[str, str]:
        """A new visitor id and its cookie value."""
        visitor_id = secrets.token_urlsafe(18)  # 24 characters, 144 random bits
        return visitor_id, f"{visitor_id}.{self._sign(visitor_id)}"

    def verify(self, value: str | None) -> str | None:
        """The visitor id of a genuine cookie value, else None."""
        if not value:
            return None
        visitor_id, _, signature = value.partition(".")
        if not _VISITOR_ID.fullmatch(visitor_id):
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(visitor_id).encode()):
            return None
        return visitor_id

    def _sign(self, visitor_id: str) -> str:
        digest = hmac.new(self._key, f"webchat-visitor:{visitor_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


@dataclass(eq=False)
class Listener:
    """One live connection waiting for news of one visitor."""

    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> None:
        """Return once woken (then re-armed); callers bound it with ``asyncio.timeout``."""
        await self.event.wait()
        self.event.clear()


class VisitorHub:
    """In-process pub/sub of wake-ups keyed by visitor id; publish is safe from any thread.

    It carries no data: listeners read the database. Another instance's publish does not
    reach this one, which is why streams also poll (see ``bot/web/chat.py``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, set[Listener]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def listen(self, visitor_id: str) -> Iterator[Listener]:
        """Register a listener on the running loop for the duration of the block."""
        listener = Listener(asyncio.get_running_loop())
        with self._lock:
            self._listeners.setdefault(visitor_id, set()).add(listener)
        try:
            yield listener
        finally:
            with self._lock:
                group = self._listeners.get(visitor_id)
                if group is not None:
                    group.discard(listener)
                    if not group:
                        del self._listeners[visitor_id]

    def publish(self, visitor_id: str) -> int:
        """Wake every listener of this visitor; returns how many were woken."""
        with self._lock:
            listeners = list(self._listeners.get(visitor_id, ()))
        return sum(_wake(listener) for listener in listeners)

    def close(self) -> None:
        """Shutting down: wake every listener so its stream ends."""
        self._closed = True
        with self._lock:
            listeners = [lst for group in self._listeners.values() for lst in group]
        for listener in listeners:
            _wake(listener)


def _wake(listener: Listener) -> bool:
    if listener.loop.is_closed():
        return False
    with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
        listener.loop.call_soon_threadsafe(listener.event.set)
        return True
    return False


class WebChatSender:
    """Delivers to the web chat: the reply is stored already, so wake the visitor's streams."""

    channel = CHANNEL

    def __init__(self, hub: VisitorHub) -> None:
        self.hub = hub

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        woken = self.hub.publish(target)
        logger.debug("webchat: woke %d live listener(s)", woken)
        return SendResult(provider_message_id=None)


@dataclass
class WebChat:
    """What the web chat routes need: cookies, the hub and the sender (built by the app)."""

    cookies: VisitorCookies
    hub: VisitorHub
    sender: WebChatSender

    @classmethod
    def build(cls, secret: str | None) -> WebChat:
        """Wire the web chat; without a configured secret, a random one for this process."""
        if secret is None:
            logger.info(
                "WEBCHAT_SECRET is not set: using a random one, so visitors start a new chat "
                "after a restart (set it for stable sessions and for several instances)"
            )
            secret = secrets.token_urlsafe(32)
        hub = VisitorHub()
        return cls(VisitorCookies(secret), hub, WebChatSender(hub))


# -- the read side: what the visitor sees -------------------------------------------------

VISIBLE_AUTHORS = (Author.customer.value, Author.bot.value, Author.agent.value)
VISIBLE_DIRECTIONS = (Direction.inbound.value, Direction.outbound.value)


class ChatButton(BaseModel):
    text: str
    data: str


class ChatMessagePublic(BaseModel):
    """One message as the widget shows it (never a private note or an internal event)."""

    id: int
    author: str  # customer, bot, agent
    author_name: str | None = None  # an agent's first name
    text: str
    created_at: str
    client_id: str | None = None  # the widget's id of a customer message
    buttons: list[ChatButton] = []


def visitor_messages(
    session: Session, visitor_id: str, *, after: int = 0, limit: int = PAGE
) -> list[ChatMessagePublic]:
    """The visitor's messages with ``id > after``, oldest first (the latest ``limit`` when
    ``after`` is 0). Only the conversation's latest bot/agent message carries buttons."""
    identity_id = session.exec(
        select(ChannelIdentity.id)
        .where(ChannelIdentity.channel == CHANNEL)
        .where(ChannelIdentity.external_id == visitor_id)
    ).first()
    if identity_id is None:
        return []
    conversations = select(Conversation.id).where(Conversation.identity_id == identity_id)
    visible = (
        select(Message)
        .where(col(Message.conversation_id).in_(conversations))
        .where(col(Message.direction).in_(VISIBLE_DIRECTIONS))
        .where(col(Message.author).in_(VISIBLE_AUTHORS))
        .where(Message.kind != "note")
    )
    if after > 0:
        rows = list(
            session.exec(
                visible.where(col(Message.id) > after).order_by(col(Message.id)).limit(limit)
            )
        )
    else:
        rows = list(
            reversed(session.exec(visible.order_by(col(Message.id).desc()).limit(limit)).all())
        )
    if not rows:
        return []
    latest_outbound = session.exec(
        select(func.max(Message.id))
        .where(col(Message.conversation_id).in_(conversations))
        .where(Message.direction == Direction.outbound.value)
    ).one()
    buttons = _buttons_of(session, latest_outbound) if latest_outbound else []
    user_ids = {m.author_user_id for m in rows if m.author_user_id is not None}
    names = (
        {
            user.id: user.name.split()[0] if user.name.strip() else None
            for user in session.exec(select(User).where(col(User.id).in_(user_ids)))
        }
        if user_ids
        else {}
    )
    return [
        ChatMessagePublic(
            id=m.id or 0,
            author=m.author,
            author_name=names.get(m.author_user_id) if m.author == Author.agent.value else None,
            text=m.text,
            created_at=m.created_at.isoformat(),
            client_id=client_id_of(m.external_id)
            if m.direction == Direction.inbound.value
            else None,
            buttons=buttons if m.id == latest_outbound else [],
        )
        for m in rows
    ]


def _buttons_of(session: Session, message_id: int) -> list[ChatButton]:
    entries = session.exec(
        select(OutboxEntry)
        .where(OutboxEntry.message_id == message_id)
        .order_by(col(OutboxEntry.id))
    )
    return [
        ChatButton(text=str(b["text"]), data=str(b["data"]))
        for entry in entries
        for b in entry.payload.get("buttons", [])
        if isinstance(b, dict) and "text" in b and "data" in b
    ]
