"""The app factory: the one place that builds and wires concrete objects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from bot.channels import slack, telegram, webchat, webchat_secret, whatsapp
from bot.delivery import OutboxWorker
from bot.logs import install_redaction
from bot.model import ModelHolder, policy_guard
from bot.retrain import Retrainer
from bot.scheduler import AssignmentSweeper, ClarificationSweeper, JobScheduler
from bot.settings import Settings
from bot.teaching import Teacher
from bot.triage import Predictor, Triage
from bot.web import (
    api,
    chat,
    console,
    errors,
    health,
    signals_api,
    teaching_api,
    webhooks,
)
from bot.web import whatsapp as whatsapp_web
from bot.web.api_assignment import router as api_assignment_router
from bot.web.api_replies import router as api_replies_router
from bot.web.bearer import BearerAuth
from bot.web.console_admin import router as console_admin_router
from bot.web.console_assignment import router as console_assignment_router
from bot.web.console_dashboard import router as console_dashboard_router
from bot.web.console_hours import router as console_hours_router
from bot.web.console_replies import router as console_replies_router
from bot.web.console_teaching import router as console_teaching_router
from bot.web.limits import BodyLimit
from bot.web.rate_limit import ChatRateLimits
from classifier import load_faq, train_faq_model
from classifier.gate import Gate
from classifier.mining import Embedder, embedder_for
from handoff.db import build_engine
from handoff.outbox import RetryPolicy
from handoff.suggestions import Miner

logger = logging.getLogger(__name__)

TEXT_LIMITS = {"telegram": telegram.MAX_TEXT, "whatsapp": 4096, "webchat": 10_000}


@dataclass
class Services:
    """Everything the routes need, built once per app."""

    settings: Settings
    engine: Engine
    models: ModelHolder
    triage: Triage
    worker: OutboxWorker
    retrainer: Retrainer
    miner: Miner
    teacher: Teacher
    senders: dict[str, Any] = field(default_factory=dict)
    telegram_bot: Any = None
    webchat: webchat.WebChat | None = None
    chat_limits: ChatRateLimits | None = None
    sweeper: ClarificationSweeper | None = None


def build_services(
    settings: Settings,
    *,
    telegram_httpx_kwargs: dict[str, Any] | None = None,
    predictor: Predictor | None = None,
) -> Services:
    """Create engine, model holder, channel senders, pipeline and outbox worker.

    ``predictor`` replaces the served model in the pipeline (tests script predictions).
    """
    secrets = [
        s.get_secret_value()
        for s in (
            settings.telegram_bot_token,
            settings.telegram_webhook_secret,
            settings.slack_webhook_url,
            settings.whatsapp_access_token,
            settings.whatsapp_app_secret,
            settings.whatsapp_verify_token,
            settings.webchat_secret,
        )
        if s is not None
    ]
    install_redaction(secrets)
    engine = build_engine(settings.database_url)
    links = {
        "product_name": settings.product_name,
        "reset_url": settings.reset_url,
        "status_url": settings.status_url,
        "billing_url": settings.billing_url,
        "docs_url": settings.docs_url,
    }
    models = ModelHolder(
        settings.model_path,
        settings.faq_path,
        settings.policy_path,
        links,
        TEXT_LIMITS,
        timedelta(hours=settings.reopen_window_hours),
        alert_options={
            "console_url": settings.public_url.rstrip("/") + "/console",
            "slack_webhook_url": (
                settings.slack_webhook_url.get_secret_value()
                if settings.slack_webhook_url
                else None
            ),
        },
        hours_path=settings.hours_path,
        templates_path=settings.whatsapp_templates_path,
    )
    senders: dict[str, Any] = {}
    bot = None
    if settings.telegram_bot_token is not None:
        bot = telegram.build_bot(
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_api_base_url,
            httpx_kwargs=telegram_httpx_kwargs,
        )
        senders[telegram.CHANNEL] = telegram.TelegramSender(bot)
    senders[slack.CHANNEL] = slack.SlackWebhookSender(settings.slack_timeout_seconds)
    web_chat = webchat.WebChat.build(
        webchat_secret.resolve(
            settings.webchat_secret.get_secret_value() if settings.webchat_secret else None,
            settings.environment,
            settings.webchat_secret_path,
        ),
        engine,
    )
    senders[webchat.CHANNEL] = web_chat.sender
    if settings.whatsapp_access_token is not None and settings.whatsapp_phone_number_id:
        senders[whatsapp.CHANNEL] = whatsapp.WhatsAppSender(
            settings.whatsapp_access_token.get_secret_value(),
            settings.whatsapp_phone_number_id,
            settings.whatsapp_api_base_url,
        )
    worker = OutboxWorker(
        engine,
        senders,
        retry=RetryPolicy(max_attempts=settings.outbox_max_attempts),
        poll_seconds=settings.outbox_poll_seconds,
    )
    predict = models.classifier if predictor is None else lambda: predictor
    triage = Triage(engine, predict, models.config, on_commit=worker.wake)
    sweeper = ClarificationSweeper(
        triage.expire_clarifications, timedelta(seconds=settings.clarify_timeout_seconds)
    )
    chat_limits = ChatRateLimits.build(
        settings.webchat_max_per_visitor,
        settings.webchat_max_per_address,
        settings.webchat_rate_window_seconds,
    )
    retrainer = Retrainer(
        lambda: train_faq_model(
            settings.faq_path,
            settings.model_path,
            backend=settings.model_backend,
            guard=policy_guard(settings.policy_path),
        ),
        models.load,
    )
    miner = Miner(
        engine,
        _clustering(settings.suggestion_clustering),
        reference=lambda: load_faq(settings.faq_path).training_data(),
        distance_threshold=settings.suggestion_distance,
        window_days=settings.suggestion_window_days,
    )
    teacher = Teacher(
        engine,
        models,
        retrainer,
        miner,
        backend=settings.model_backend,
        gate=Gate(settings.gate_min_precision, settings.gate_max_coverage_drop),
    )
    return Services(
        settings,
        engine,
        models,
        triage,
        worker,
        retrainer,
        miner,
        teacher,
        senders,
        bot,
        webchat=web_chat,
        sweeper=sweeper,
        chat_limits=chat_limits,
    )


def _clustering(choice: str) -> Callable[[], Embedder | None]:
    """The embedder for clustering unanswered questions, resolved once on first use ("auto":
    sentence embeddings when the extra is installed, else None: tf-idf)."""
    resolved: list[Embedder | None] = []

    def embedder() -> Embedder | None:
        if not resolved:
            resolved.append(embedder_for("embeddings" if choice == "auto" else choice))
        return resolved[0]

    return embedder


async def _watch_files(models: ModelHolder, every: float, stop: asyncio.Event) -> None:
    """Reload the model, FAQ and policy when another instance (or a person) changed them."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
            return
        try:
            await asyncio.to_thread(models.reload_if_changed)
        except Exception:  # never let the watcher die; the next round tries again
            logger.exception("checking the model and FAQ files failed")


def create_app(
    settings: Settings,
    *,
    telegram_httpx_kwargs: dict[str, Any] | None = None,
    run_worker: bool = True,
    predictor: Predictor | None = None,
) -> FastAPI:
    """Build the FastAPI app for these settings (nothing is created at import time)."""
    services = build_services(
        settings, telegram_httpx_kwargs=telegram_httpx_kwargs, predictor=predictor
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(services.models.load)
        task = asyncio.create_task(services.worker.run()) if run_worker else None
        scheduler = JobScheduler(
            services.engine,
            str(settings.health_path),
            settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None,
        )
        jobs_task = (
            asyncio.create_task(scheduler.run())
            if run_worker and settings.scheduler_enabled
            else None
        )
        sweeper = services.sweeper
        sweep_task = (
            asyncio.create_task(sweeper.run()) if run_worker and sweeper is not None else None
        )
        assigner = AssignmentSweeper(
            services.engine,
            lambda: services.models.config().policy.assignment,
            interval=settings.assignment_sweep_seconds,
        )
        assign_task = asyncio.create_task(assigner.run()) if run_worker else None
        stop_watch = asyncio.Event()
        watch_task = (
            asyncio.create_task(
                _watch_files(services.models, settings.config_reload_seconds, stop_watch)
            )
            if settings.config_reload_seconds > 0
            else None
        )
        try:
            yield
        finally:
            stop_watch.set()
            if watch_task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(watch_task, timeout=10)
            scheduler.stop()
            await asyncio.to_thread(services.retrainer.wait, 60)  # a retrain in progress
            if jobs_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(jobs_task, timeout=10)
            assigner.stop()
            if assign_task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(assign_task, timeout=10)
            if sweeper is not None:
                sweeper.stop()
            if sweep_task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(sweep_task, timeout=10)
            if services.webchat is not None:
                services.webchat.hub.close()  # ends live chat streams
            services.worker.stop()
            if task is not None:
                # a send in flight gets 10 s to finish; wait_for cancels it after that, and
                # its outbox entry's lease expires so it is retried after the restart
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=10)
            if services.telegram_bot is not None:
                # Bot.shutdown() is a no-op for a Bot that was never initialize()d (we skip
                # initialize: it calls getMe and puts the token in its error message), so
                # close the shared HTTPXRequest's connection pool directly.
                await services.telegram_bot.request.shutdown()
            for sender in services.senders.values():
                aclose = getattr(sender, "aclose", None)
                if aclose is not None:
                    await aclose()
            services.engine.dispose()

    app = FastAPI(title="triagebot", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    app.state.retrainer = services.retrainer  # one per app: the console's and the API's
    errors.install(app)
    # Outermost last: the body limit applies first, then API tokens are checked, both before
    # any route reads the body.
    app.add_middleware(BearerAuth, engine=services.engine)
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={signals_api.IMPORT_PATH: settings.max_import_body_bytes},
    )
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(whatsapp_web.router)
    app.include_router(api.router)
    app.include_router(api_replies_router)
    app.include_router(api_assignment_router)
    app.include_router(signals_api.router)
    app.include_router(teaching_api.router)
    app.include_router(chat.router)
    app.include_router(console.router)
    app.include_router(console_dashboard_router)
    app.include_router(console_replies_router)
    app.include_router(console_hours_router)
    app.include_router(console_assignment_router)
    app.include_router(console_admin_router)
    app.include_router(console_teaching_router)
    static = Path(__file__).parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")  # web pages' assets
    return app
