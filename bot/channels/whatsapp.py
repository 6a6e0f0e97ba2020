"""WhatsApp (Meta's Cloud API): inbound webhooks and outbound messages over the Graph API.

Inbound: Meta posts ``{"object": "whatsapp_business_account", "entry": [...]}`` batches,
signed with ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app
secret>``. Every ``entry[].changes[].value`` may carry ``messages`` (what customers wrote),
``statuses`` (sent / delivered / read / failed for what we sent) and ``contacts`` (names).
:func:`parse_payload` turns a whole batch into :class:`InboundMessage` and
:class:`StatusUpdate` items.

Outbound: ``POST {base}/{phone_number_id}/messages`` with a Bearer token. Free-form
messages are only allowed within 24 hours of the customer's last message; outside it Meta
refuses with error 131047 and only an approved template may be sent. Senders raise the
errors of :mod:`bot.channels.base`. Buttons become interactive messages within the Cloud
API's limits: up to 3 *reply buttons* (titles of at most 20 characters), or a *list message*
for 4 to 10 options (one section of rows: titles of at most 24 characters, ids of at most
200, a body of at most 1024 characters and an opening button of at most 20); beyond those
limits the options are listed in the text. A tapped button comes back as ``button_reply``, a
chosen row as ``list_reply``, both with our id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.base import (
    Button,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    RetryLater,
    SendResult,
    TemplateMessage,
    Unreachable,
)

logger = logging.getLogger(__name__)

CHANNEL = "whatsapp"
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024  # body text of an interactive message
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_ID = 200
LIST_BUTTON_TEXT = "Choose"  # opens the list (at most 20 characters)
MAX_CALLBACK_DATA = 64  # our own buttons never carry more (Telegram's limit, shared data)
MAX_ID = 128  # our columns for delivery ids and sender addresses
DEFAULT_API_BASE_URL = "https://graph.facebook.com/v21.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"

DELIVERY_STATUSES = ("sent", "delivered", "read", "failed")
RATE_LIMIT_CODES = {4, 80007, 130429, 131048, 131056}
UNDELIVERABLE = 131026
OUTSIDE_WINDOW = 131047
AUTH_CODES = {190}
_MEDIA_KINDS = {
    "image": "photo",
    "sticker": "sticker",
    "audio": "audio",
    "video": "video",
    "document": "document",
    "location": "location",
    "contacts": "contact",
}
# Not something to answer: a reaction to one of our messages, a "changed number" notice.
_NOTICE_KINDS = {"reaction", "system"}


@dataclass(frozen=True)
class StatusUpdate:
    """What happened to a message we sent (``provider_message_id`` is its wamid)."""

    provider_message_id: str
    status: str  # sent, delivered, read, failed (others are passed through as given)
    recipient_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Notice:
    """A customer event kept (as an ignored inbound event) but not answered."""

    external_id: str
    reason: str
    raw: dict[str, Any]


Item = InboundMessage | StatusUpdate | Notice


def verify_signature(app_secret: str | None, raw_body: bytes, header: str | None) -> bool:
    """Constant-time check of ``X-Hub-Signature-256``; fails closed without a secret."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


def verify_subscription(expected: str | None, mode: str | None, token: str | None) -> bool:
    """The GET handshake: ``hub.mode=subscribe`` with our verify token (constant time)."""
    if not expected or mode != "subscribe" or token is None:
        return False
    return hmac.compare_digest(expected.encode(), token.encode())


def describe_error(code: object, detail: str = "") -> str:
    """A sentence for agents and logs; names the 24-hour window when that is the cause."""
    if code == OUTSIDE_WINDOW:
        return "outside WhatsApp's 24-hour window: a template message is needed (error 131047)"
    if code == UNDELIVERABLE:
        return "WhatsApp could not deliver to this number (error 131026)"
    return f"WhatsApp error {code}: {detail}".rstrip(": ")


def parse_payload(data: Any) -> list[Item]:
    """Every message, notice and status of a webhook batch, in order.

    Raises ValueError when the payload is not a WhatsApp Business Account notification.
    Changes other than ``messages`` (template or account updates) yield nothing.
    """
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp notification: object is not whatsapp_business_account")
    items: list[Item] = []
    for entry in _list(data, "entry", required=True):
        for change in _list(_dict(entry, "entry"), "changes", required=True):
            change = _dict(change, "change")
            if change.get("field", "messages") != "messages":
                continue
            value = _dict(change.get("value"), "change value")
            names = _contact_names(value)
            for message in _list(value, "messages"):
                items.append(_message(_dict(message, "message"), names))
            for status in _list(value, "statuses"):
                items.append(_status(_dict(status, "status")))
    return items


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"malformed WhatsApp notification: {what} is not an object")
    return value


def _list(parent: dict[str, Any], key: str, *, required: bool = False) -> list[Any]:
    value = parent.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ValueError(f"malformed WhatsApp notification: '{key}' is not a list")
    return value


def _str(parent: dict[str, Any], key: str, limit: int = MAX_ID) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"malformed WhatsApp notification: '{key}' is not a short string")
    return value


def _contact_names(value: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _list(value, "contacts"):
        contact = _dict(contact, "contact")
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(contact.get("wa_id"), str) and isinstance(name, str) and name:
            names[contact["wa_id"]] = name[:300]
    return names


def _message(message: dict[str, Any], names: dict[str, str]) -> InboundMessage | Notice:
    kind = message.get("type")
    if isinstance(kind, str) and kind in _NOTICE_KINDS:
        return Notice(_str(message, "id"), f"WhatsApp {kind} message", message)
    sender = _str(message, "from")
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "external_id": _str(message, "id"),
        "sender_id": sender,
        "sender_name": names.get(sender),
        "raw": message,
    }
    body = message.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        text = body.get("body")
        if not isinstance(text, str):
            raise ValueError("malformed WhatsApp text message: text.body is not a string")
        if text.startswith("/"):
            head, _, args = text.partition(" ")
            command = head[1:].lower()
            return InboundMessage(
                text=text, kind="command", command=command, command_args=args.strip(), **common
            )
        return InboundMessage(text=text, kind="text", **common)
    reply = _reply(kind, body)
    if reply is not None:
        data, title = reply
        return InboundMessage(text=title, kind="callback", callback_data=data, **common)
    if isinstance(kind, str) and kind in _MEDIA_KINDS:
        caption = body.get("caption")
        media = "voice" if kind == "audio" and body.get("voice") is True else _MEDIA_KINDS[kind]
        return InboundMessage(
            text=caption if isinstance(caption, str) else "", kind=media, **common
        )
    return InboundMessage(text="", kind="other", **common)


def _reply(kind: Any, body: dict[str, Any]) -> tuple[str | None, str] | None:
    """(button data, title) of a tapped reply button, list row or template quick reply."""
    if kind == "interactive":
        reply_type = body.get("type")  # button_reply or list_reply
        choice = body.get(reply_type) if isinstance(reply_type, str) else None
        if not isinstance(choice, dict):
            return None
        data, title = choice.get("id"), choice.get("title")
    elif kind == "button":
        data, title = body.get("payload"), body.get("text")
    else:
        return None
    title = title if isinstance(title, str) else ""
    if not isinstance(data, str) or len(data) > MAX_CALLBACK_DATA:
        return None, title  # not one of ours: kept as a tap without data
    return data, title


def _status(status: dict[str, Any]) -> StatusUpdate:
    errors = status.get("errors")
    error = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        error = describe_error(first.get("code"), str(first.get("title") or ""))
    recipient = status.get("recipient_id")
    return StatusUpdate(
        provider_message_id=_str(status, "id", limit=200),
        status=_str(status, "status", limit=16),
        recipient_id=recipient if isinstance(recipient, str) else None,
        error=error,
    )


class WhatsAppSender:
    """Sends text and reply buttons through the Cloud API (``POST /{phone_id}/messages``).

    The HTTP client is created on first use and closed by :meth:`aclose` (the app's lifespan).
    """

    channel = CHANNEL

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        base_url: str = DEFAULT_API_BASE_URL,
        *,
        timeout: float = 15.0,
        httpx_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._token = access_token
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._timeout = timeout
        self._httpx_kwargs = httpx_kwargs or {}
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, **self._httpx_kwargs
            )
        return self._client

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        body = build_message(target, message)
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            response = await self._http().post(self._url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryLater(f"WhatsApp Cloud API unreachable: {type(exc).__name__}") from None
        if response.is_success:
            return SendResult(provider_message_id=_message_id(response))
        raise _map_error(response)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def build_message(target: str, message: OutboundMessage) -> dict[str, Any]:
    """The Cloud API body: an approved template with its body parameters, reply buttons (up
    to 3) or a list (up to 10) when the options fit WhatsApp's limits, else plain text
    listing them."""
    common = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": target}
    if message.template is not None:
        return {**common, "type": "template", "template": _template(message.template)}
    buttons = message.buttons
    interactive = None
    if _fits(message, MAX_BUTTONS, MAX_BUTTON_ID, MAX_BUTTON_TITLE):
        interactive = {
            "type": "button",
            "body": {"text": message.text},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": b.data, "title": _title(b)}} for b in buttons
                ]
            },
        }
    elif _fits(message, MAX_LIST_ROWS, MAX_ROW_ID, MAX_ROW_TITLE):
        rows = [{"id": b.data, "title": _title(b, MAX_ROW_TITLE)} for b in buttons]
        interactive = {
            "type": "list",
            "body": {"text": message.text},
            "action": {
                "button": LIST_BUTTON_TEXT,
                "sections": [{"title": "Options", "rows": rows}],
            },
        }
    if interactive is not None:
        return {**common, "type": "interactive", "interactive": interactive}
    return {**common, "type": "text", "text": {"body": _with_options(message.text, buttons)}}


def _template(template: TemplateMessage) -> dict[str, Any]:
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        parameters = [{"type": "text", "text": value} for value in template.parameters]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return body


def _fits(message: OutboundMessage, count: int, id_limit: int, title_limit: int) -> bool:
    """Whether the options can be ``count`` tappable items with these limits (titles are cut
    to ``title_limit``, so they must still differ)."""
    buttons = message.buttons
    return (
        0 < len(buttons) <= count
        and len(message.text) <= MAX_INTERACTIVE_BODY
        and all(0 < len(b.data) <= id_limit and b.text.strip() for b in buttons)
        and len({_title(b, title_limit) for b in buttons}) == len(buttons)
        and len({b.data for b in buttons}) == len(buttons)
    )


def _title(button: Button, limit: int = MAX_BUTTON_TITLE) -> str:
    title = button.text.strip()
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _with_options(text: str, buttons: tuple[Button, ...]) -> str:
    if not buttons:
        return text
    listed = f"{text}\n\nReply with one of:\n" + "\n".join(f"• {b.text}" for b in buttons)
    return listed if len(listed) <= MAX_TEXT else text


def _message_id(response: httpx.Response) -> str | None:
    try:
        messages = response.json().get("messages")
        return str(messages[0]["id"])
    except (ValueError, AttributeError, LookupError, TypeError):
        logger.warning("whatsapp: sent, but the response carried no message id")
        return None


def _map_error(response: httpx.Response) -> Exception:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
        code, detail = error.get("code"), str(error.get("message") or "")
    except (ValueError, AttributeError):
        code, detail = None, response.text[:200]
    if status == 429 or code in RATE_LIMIT_CODES:
        retry = response.headers.get("retry-after", "")
        delay = float(retry) if retry.isdigit() else None
        return RetryLater(f"WhatsApp rate limit: {describe_error(code, detail)}", delay=delay)
    if status >= 500:
        return RetryLater(f"WhatsApp Cloud API failed with {status}: {detail[:200]}")
    if status == 401 or code in AUTH_CODES:
        return RetryLater("WhatsApp rejected the access token: check WHATSAPP_ACCESS_TOKEN")
    if code == UNDELIVERABLE:
        return Unreachable(describe_error(code))
    if code == OUTSIDE_WINDOW:
        # Not Unreachable: that flags the contact for good, and the window reopens as soon
        # as the customer writes again. The entry is dead-lettered with this explanation.
        return PermanentError(describe_error(code))
    return PermanentError(describe_error(code if code is not None else status, detail[:300]))
