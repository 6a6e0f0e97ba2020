"""The ``triagebot`` command line: serve, migrate, model, demo, telegram."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bot.logs import configure_logging
from bot.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app

    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    print(f"triagebot on http://{host}:{port}  (health: /healthz, web chat: /chat)", flush=True)
    app = create_app(settings)
    webchat = app.state.services.webchat

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            # uvicorn waits for open connections before the lifespan ends: end the web chat's
            # live streams first, or shutting down would wait for them.
            if webchat is not None:
                webchat.hub.close()
            await super().shutdown(sockets=sockets)

    Server(server_config(app, settings, host, port)).run()
    return 0


def server_config(app: Any, settings: Settings, host: str, port: int, **extra: Any) -> Any:
    """uvicorn's configuration for ``app``.

    ``X-Forwarded-For``/``-Proto`` are believed only from ``TRUSTED_PROXIES`` (default: from
    nobody). uvicorn's own default trusts them from loopback, which lets any client behind no
    proxy — or reaching the port directly — pick the address the login limiter and the web
    chat's rate limit count it under.
    """
    import uvicorn

    trusted = settings.trusted_proxies.strip()
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
        **extra,
    }
    return uvicorn.Config(app, **values)


def _migrate(_args: argparse.Namespace) -> int:
    from handoff.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    print("database schema is up to date")
    return 0


def _ensure_model(args: argparse.Namespace) -> int:
    from bot.model import policy_guard
    from classifier import model_is_current, train_faq_model

    settings = load_settings()
    stale = model_is_current(settings.faq_path, settings.model_path, settings.model_backend)
    if stale is None and not args.force:
        print(f"model is current: {settings.model_path}")
        return 0
    print(f"(re)training: {stale or 'forced'}")
    print(f"training the FAQ model ({settings.model_backend}) -> {settings.model_path}", flush=True)
    clf = train_faq_model(
        settings.faq_path,
        settings.model_path,
        backend=settings.model_backend,
        guard=policy_guard(settings.policy_path),
    )
    cv = clf.metadata_.get("cv", {})
    if "accuracy" in cv:
        print(
            f"cross-validated accuracy {cv['accuracy']:.2%}; answers {cv['coverage']:.2%} "
            f"of messages at {cv['precision']:.2%} precision over all answers "
            f"(intents it never saw counted at a {cv.get('oos_prior', 0):.0%} share; "
            f"{cv.get('unknown_refused') or 0:.0%} of those refused)"
        )
    safety = clf.metadata_.get("faq_safety") or {}
    if safety:
        print(
            f"strategic/human examples auto-answered in cross-validation: "
            f"{safety['auto_answered']} of {safety['sensitive_examples']}, "
            f"{safety['after_policy']} after the policy's strategic terms"
        )
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from bot.demo import load_demo

    settings = load_settings()
    print(load_demo(settings))
    return 0


# Command groups registered by modules whose imports take seconds (scikit-learn,
# python-telegram-bot, SQLAlchemy): a group's module is imported only when one of its commands
# runs, so ``triagebot --help`` and the light commands start at once. Until then each command
# shows the help below, which ``tests/unit/test_cli_help.py`` keeps equal to the real one.
LAZY_GROUPS: dict[str, dict[str, str]] = {
    "classifier.cli:add_model_parser": {"model": "train or evaluate the intent model"},
    "bot.telegram_cli:add_telegram_parser": {
        "telegram": "set up the Telegram webhook, or long-poll"
    },
    "bot.admin_cli:add_admin_parsers": {
        "accounts": "import accounts",
        "users": "staff users and API tokens",
        "contacts": "customer contacts: Telegram link tokens",
        "privacy": "erase a person; apply retention",
    },
    "bot.cs_cli:add_cs_parsers": {
        "usage": "product usage signals",
        "jobs": "scheduled Customer Success jobs (exactly once per period)",
    },
}


def _register(sub: Any, target: str) -> None:
    import importlib

    module, name = target.split(":")
    add = getattr(importlib.import_module(module), name)
    if target.startswith("classifier.cli:"):
        from classifier.cli import ModelDefaults

        def model_defaults() -> ModelDefaults:
            settings = load_settings()
            return ModelDefaults(settings.model_path, settings.faq_path, settings.model_backend)

        add(sub, model_defaults)
    else:
        add(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's argument parser. With ``command``, only the group that owns it is imported
    (the others are listed with their help); without, every group is."""
    parser = argparse.ArgumentParser(prog="triagebot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    ensure = sub.add_parser("ensure-model", help="train the FAQ model if missing or stale")
    ensure.add_argument("--force", action="store_true", help="retrain even if present")
    ensure.set_defaults(func=_ensure_model)
    sub.add_parser("demo", help="load demo accounts, users and contacts").set_defaults(func=_demo)
    sub.add_parser(
        "urls", help="print where the service listens (host, port, PUBLIC_URL)"
    ).set_defaults(func=_urls)
    for target, commands in LAZY_GROUPS.items():
        if command is None or command in commands:
            _register(sub, target)
        else:
            for name, text in commands.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` ("" when there is none, e.g. ``--help``)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _urls(_args: argparse.Namespace) -> int:
    """The banner of ``make run``: the real port, and the URLs the service is reached at."""
    settings = load_settings()
    base = settings.public_url.rstrip("/")
    print(f"  triagebot is starting on http://{settings.host}:{settings.port}")
    print(f"    web chat (talk to the bot):  {base}/chat")
    print(f"    agent console:               {base}/console  (agent@demo.test / demo-agent)")
    print(f"    health:                      {base}/healthz")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``triagebot`` console script."""
    configure_logging(Settings.model_fields["log_level"].default)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_of(args_list)).parse_args(args_list)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
