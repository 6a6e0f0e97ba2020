"""What every channel shares: one normalized inbound message, one outbound protocol.

A channel module has an inbound side (verify the request, normalize it into
:class:`InboundMessage`) and an outbound side (an :class:`OutboundSender`). Senders raise:

    SendError
    ├── RetryLater     the provider asked us to wait (rate limit) or failed transiently (5xx,
    │                  network); ``delay`` seconds is the provider's hint, if any
    ├── Unreachable    the recipient blocked us or can no longer be written to
    └── PermanentError the provider refused this message for good (bad request)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Button:
    """A one-tap reply; ``data`` comes back in the inbound message's ``callback_data``."""

    text: str
    data: str


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, the same for every channel."""

    channel: str
    external_id: str  # delivery id used for deduplication (update_id, wamid, client id)
    sender_id: str  # where replies go (chat id, phone number, web session)
    text: str = ""
    kind: str = "text"  # text, command, callback, photo, sticker, voice, document, edit, other
    sender_name: str | None = None
    command: str | None = None  # "start", "help", "human" for /commands
    command_args: str = ""
    callback_data: str | None = None
    callback_id: str | None = None  # to acknowledge a button press
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateMessage:
    """An approved message template (WhatsApp) with its body parameters, in order."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    text: str
    buttons: tuple[Button, ...] = ()
    # Send as this template (WhatsApp outside the 24-hour window); ``text`` is its preview.
    template: TemplateMessage | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None


class SendError(Exception):
    """Base of outbound failures."""


class RetryLater(SendError):
    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Unreachable(SendError):
    pass


class PermanentError(SendError):
    pass


class OutboundSender(Protocol):
    """Sends one message to one recipient of a channel."""

    channel: str

    async def send(self, target: str, message: OutboundMessage) -> SendResult: ...
