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

What the visitor sees (their messages, who has their chat) is read by
``bot/channels/webchat_history.py``.

Outbound: a reply is already stored as an outbound ``Message`` by the pipeline, so
:class:`WebChatSender` only wakes the visitor's live listeners (:class:`VisitorHub`); the
stream then reads new messages from the database by id, so nothing is lost across reconnects.
Each customer message records which secret signed the visitor's cookie (``raw["key_id"]``, a
fingerprint, never the secret): when the secret has changed since, no browser can ever present
that visitor's cookie again, so a reply to them raises ``Unreachable`` and the agent sees it
as not delivered instead of ``sent``.
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

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.channels.base import InboundMessage, OutboundMessage, SendResult, Unreachable
from handoff.models import (
    ChannelIdentity,
    Conversation,
    Direction,
    Message,
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


def parse_post(data: object, visitor_id: str, key_id: str | None = None) -> InboundMessage:
    """Validate a decoded POST body and normalize it for the pipeline (raises InvalidPost).

    ``key_id``: the fingerprint of the secret that signed the visitor's cookie, kept with the
    message so a reply can tell whether the visitor can still be reached."""
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
        "raw": {"client_id": client_id, "key_id": key_id} if key_id else {"client_id": client_id},
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

    @property
    def key_id(self) -> str:
        """A short fingerprint of the secret (safe to store): which key signed a cookie."""
        digest = hmac.new(self._key, b"webchat-key-id", hashlib.sha256).hexdigest()
        return digest[:16]

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
    """Delivers to the web chat: the reply is stored already, so wake the visitor's streams.

    With an ``engine``, a visitor whose cookie was signed with another secret (the secret
    changed since their last message) is ``Unreachable``: nobody can ever read the reply.
    """

    channel = CHANNEL

    def __init__(
        self, hub: VisitorHub, key_id: str | None = None, engine: Engine | None = None
    ) -> None:
        self.hub = hub
        self.key_id = key_id
        self._engine = engine

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        if self._engine is not None and self.key_id is not None:
            visitor_key = await asyncio.to_thread(_key_of, self._engine, target)
            if visitor_key is not None and visitor_key != self.key_id:
                raise Unreachable(
                    "not delivered: the visitor's web chat session ended when the web chat "
                    "secret changed (WEBCHAT_SECRET), so they can no longer see replies here"
                )
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
    def build(cls, secret: str | None, engine: Engine | None = None) -> WebChat:
        """Wire the web chat; without a secret, a random one for this process (tests).

        ``bot/channels/webchat_secret.py`` decides the secret (persisted in dev, required in
        prod). With ``engine``, replies to visitors of an earlier secret are flagged.
        """
        if secret is None:
            logger.info(
                "no web chat secret: using a random one, so visitors start a new chat "
                "after a restart (set WEBCHAT_SECRET for stable sessions)"
            )
            secret = secrets.token_urlsafe(32)
        hub = VisitorHub()
        cookies = VisitorCookies(secret)
        return cls(cookies, hub, WebChatSender(hub, cookies.key_id, engine))


def _key_of(engine: Engine, visitor_id: str) -> str | None:
    with Session(engine) as session:
        return visitor_key_id(session, visitor_id)


def visitor_key_id(session: Session, visitor_id: str) -> str | None:
    """The key fingerprint of the visitor's latest message (None: unknown, e.g. older data)."""
    raw = session.exec(
        select(Message.raw)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .join(ChannelIdentity, col(ChannelIdentity.id) == col(Conversation.identity_id))
        .where(ChannelIdentity.channel == CHANNEL)
        .where(ChannelIdentity.external_id == visitor_id)
        .where(Message.direction == Direction.inbound.value)
        .order_by(col(Message.id).desc())
        .limit(1)
    ).first()
    key = raw.get("key_id") if isinstance(raw, dict) else None
    return key if isinstance(key, str) else None
