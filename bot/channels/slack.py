"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat...) for staff alerts.

Outbound only: the outbox entry's ``target`` is the webhook URL, the payload's text is posted
as ``{"text": ...}``. The URL is a secret (anyone holding it can post), so it never reaches a
log line: errors name the host only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from bot.channels.base import OutboundMessage, PermanentError, RetryLater, SendResult

CHANNEL = "slack"


class SlackWebhookSender:
    channel = CHANNEL

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        host = urlsplit(target).hostname or "?"
        if urlsplit(target).scheme not in ("http", "https"):
            raise PermanentError("the Slack webhook URL is not an http(s) URL")
        try:
            response = await self._http().post(target, json={"text": message.text})
        except httpx.HTTPError as exc:
            raise RetryLater(f"Slack webhook at {host} unreachable: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "")
            raise RetryLater(
                f"Slack webhook at {host} rate-limited us",
                delay=float(retry) if retry.isdigit() else None,
            )
        if response.status_code >= 500:
            raise RetryLater(f"Slack webhook at {host} failed with {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(
                f"Slack webhook at {host} refused the alert: {response.status_code} "
                f"{response.text[:200]}"
            )
        return SendResult()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
