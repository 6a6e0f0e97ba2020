"""python-telegram-bot's own webhook server with an empty handler (the comparison baseline).

    python -m benchmarks.ptb_server --port 8443 --base-url http://127.0.0.1:9000/bot

``Application.run_webhook`` exactly as PTB documents it (its tornado server, secret token
checked), with the Bot API pointed at the fake so start-up's getMe and setWebhook succeed
offline. The handler does nothing: PTB answers 200 once the update is parsed and queued.
"""

from __future__ import annotations

import argparse

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from benchmarks.harness import BOT_TOKEN, SECRET


async def ignore(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """The empty handler."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args(argv)
    application = Application.builder().token(BOT_TOKEN).base_url(args.base_url).build()
    application.add_handler(TypeHandler(Update, ignore))
    application.run_webhook(
        listen="127.0.0.1",
        port=args.port,
        url_path="webhooks/telegram",
        secret_token=SECRET,
        webhook_url=f"http://127.0.0.1:{args.port}/webhooks/telegram",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
