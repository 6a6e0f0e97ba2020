"""``triagebot telegram ...``: point Telegram at the webhook, inspect it, or long-poll instead.

* ``set-webhook URL``: setWebhook with the secret from ``TELEGRAM_WEBHOOK_SECRET`` and our
  update types; pending updates are never dropped.
* ``delete-webhook``: removes the webhook (pending updates are kept), e.g. before ``poll``.
* ``info``: getWebhookInfo (URL, pending updates, last delivery error).
* ``poll``: long polling for local use without a public URL; the same pipeline as the
  webhook, with the outbox worker in the same process. Stops on SIGINT/SIGTERM.

Nothing here ever prints the bot token: Telegram error messages are redacted before printing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from telegram import Bot, WebhookInfo
from telegram.error import TelegramError

from bot.channels import telegram
from bot.logs import install_redaction
from bot.polling import ALLOWED_UPDATES, TelegramPoller, WebhookActive
from bot.settings import Settings, load_settings

T = TypeVar("T")


def add_telegram_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``triagebot telegram set-webhook|delete-webhook|info|poll``."""
    parser = subparsers.add_parser("telegram", help="set up the Telegram webhook, or long-poll")
    sub = parser.add_subparsers(dest="telegram_command", required=True)
    set_hook = sub.add_parser(
        "set-webhook", help="point Telegram at URL (never drops pending updates)"
    )
    set_hook.add_argument("url", help="public HTTPS URL of /webhooks/telegram")
    set_hook.add_argument(
        "--secret-from-env",
        action="store_true",
        help="take secret_token from TELEGRAM_WEBHOOK_SECRET (the default and only source)",
    )
    set_hook.set_defaults(func=_set_webhook)
    sub.add_parser(
        "delete-webhook", help="remove the webhook, keeping pending updates"
    ).set_defaults(func=_delete_webhook)
    sub.add_parser("info", help="show the webhook's state").set_defaults(func=_info)
    poll = sub.add_parser("poll", help="long-poll Telegram instead of a webhook (local use)")
    poll.add_argument("--timeout", type=int, default=25, help="long-poll seconds (default 25)")
    poll.set_defaults(func=_poll)


# -- commands ------------------------------------------------------------------------------


def _set_webhook(args: argparse.Namespace) -> int:
    settings = _telegram_settings()
    secret = settings.telegram_webhook_secret
    if secret is None or not secret.get_secret_value():
        _fail("TELEGRAM_WEBHOOK_SECRET is not set: Telegram must send it with every update")
    if not args.url.startswith("https://"):
        print("note: Telegram only delivers to https:// URLs", file=sys.stderr)

    async def call(bot: Bot) -> WebhookInfo:
        # drop_pending_updates is deliberately never sent: updates waiting at Telegram are
        # customers' messages.
        await bot.set_webhook(
            url=args.url,
            secret_token=secret.get_secret_value(),
            allowed_updates=list(ALLOWED_UPDATES),
        )
        return await bot.get_webhook_info()

    info = _with_bot(settings, call)
    print("webhook set")
    _print_info(info)
    return 0


def _delete_webhook(_args: argparse.Namespace) -> int:
    settings = _telegram_settings()

    async def call(bot: Bot) -> WebhookInfo:
        await bot.delete_webhook(drop_pending_updates=False)
        return await bot.get_webhook_info()

    info = _with_bot(settings, call)
    print("webhook deleted (pending updates kept)")
    _print_info(info)
    return 0


def _info(_args: argparse.Namespace) -> int:
    settings = _telegram_settings()

    async def call(bot: Bot) -> WebhookInfo:
        return await bot.get_webhook_info()

    _print_info(_with_bot(settings, call))
    return 0


def _poll(args: argparse.Namespace) -> int:
    settings = _telegram_settings()
    try:
        asyncio.run(_run_polling(settings, args.timeout))
    except WebhookActive as exc:
        _fail(str(exc))
    except TelegramError as exc:
        _fail(f"Telegram refused: {_redact(settings, str(exc))}")
    return 0


async def _run_polling(settings: Settings, poll_seconds: int) -> None:
    from bot.app import build_services

    services = build_services(settings)
    bot = services.telegram_bot
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.to_thread(services.models.load)
        print("polling Telegram for updates (Ctrl-C to stop)", flush=True)
        await TelegramPoller(services, bot, poll_seconds=poll_seconds).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await bot.request.shutdown()
        services.engine.dispose()
    print("stopped", flush=True)


# -- helpers -------------------------------------------------------------------------------


def _telegram_settings() -> Settings:
    settings = load_settings()
    if settings.telegram_bot_token is None:
        _fail("TELEGRAM_BOT_TOKEN is not set (the token from @BotFather)")
    install_redaction(
        s.get_secret_value()
        for s in (settings.telegram_bot_token, settings.telegram_webhook_secret)
        if s is not None
    )
    return settings


def _with_bot(settings: Settings, call: Callable[[Bot], Awaitable[T]]) -> T:
    """Run one Bot API exchange with a fresh Bot; Telegram errors exit with a clean message."""
    token = settings.telegram_bot_token
    assert token is not None

    async def run() -> T:
        bot = telegram.build_bot(token.get_secret_value(), settings.telegram_api_base_url)
        try:
            return await call(bot)
        finally:
            await bot.request.shutdown()

    try:
        return asyncio.run(run())
    except TelegramError as exc:
        _fail(f"Telegram refused: {_redact(settings, str(exc))}")


def _print_info(info: WebhookInfo) -> None:
    rows: list[tuple[str, Any]] = [
        ("url", info.url or "(none: updates wait for getUpdates/poll)"),
        ("pending_update_count", info.pending_update_count),
        ("allowed_updates", ", ".join(info.allowed_updates or ()) or "(all but a few)"),
        ("last_error_date", info.last_error_date or "-"),
        ("last_error_message", info.last_error_message or "-"),
    ]
    for name, value in rows:
        print(f"  {name}: {value}")


def _redact(settings: Settings, text: str) -> str:
    for secret in (settings.telegram_bot_token, settings.telegram_webhook_secret):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "[REDACTED]")
    return text


def _fail(message: str) -> NoReturn:
    raise SystemExit(f"triagebot telegram: {message}")
