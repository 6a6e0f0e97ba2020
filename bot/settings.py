"""Settings from the environment (and an optional ``.env``), validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {"changeme", "change-me", "secret", "changethis", "xxx", "todo"}


class Settings(BaseSettings):
    """Every knob of the service. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    environment: Literal["dev", "test", "prod"] = "dev"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'triagebot.db'}"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"

    # WhatsApp Cloud API: token + phone number id enable sending; the app secret verifies
    # X-Hub-Signature-256 on the webhook, the verify token answers Meta's GET handshake.
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"

    # CSM alerts: a Slack-compatible incoming webhook used when a CSM has none of their own.
    slack_webhook_url: SecretStr | None = None
    slack_timeout_seconds: float = Field(default=10.0, gt=0)

    # Web chat: WEBCHAT_SECRET signs the visitor cookie and is required in prod; in dev one is
    # generated once into webchat_secret_path (mode 0600) and reused, so chats survive a
    # restart; in test a random one per process (bot/channels/webchat_secret.py).
    webchat_secret: SecretStr | None = Field(default=None, min_length=16)
    webchat_secret_path: Path = ROOT / "var" / "webchat_secret"

    # Agent console: signs the session cookie; required in prod, random per process otherwise.
    session_secret: SecretStr | None = Field(default=None, min_length=32)

    # The served intent model. Embeddings by default (the better model on every measure in
    # docs/benchmarks.md); tfidf is the light fallback (no torch). The file defaults to
    # var/models/faq-<backend>.joblib.
    model_path: Path = ROOT / "var" / "models" / "faq-embeddings.joblib"
    model_backend: Literal["tfidf", "embeddings"] = "embeddings"
    faq_path: Path = ROOT / "data" / "faq"
    policy_path: Path = ROOT / "data" / "policy.yaml"
    health_path: Path = ROOT / "data" / "health.yaml"  # health score factors, CSM alert rules
    # Business hours and holidays (no file or no hours: open 24/7), and the approved WhatsApp
    # message templates agents may send outside the 24-hour window.
    hours_path: Path = ROOT / "data" / "hours.yaml"
    whatsapp_templates_path: Path = ROOT / "data" / "whatsapp_templates.yaml"
    # In-app scheduler for the daily health job and the weekly CSM digest (exactly once).
    scheduler_enabled: bool = True
    # How often each instance checks whether the model, FAQ or policy file changed (an edit
    # or retrain made through another instance) and reloads it; 0 turns the check off.
    config_reload_seconds: float = Field(default=5.0, ge=0)

    # Links used in FAQ answers.
    product_name: str = "Acme Cloud"
    reset_url: str = "https://app.example.com/reset-password"
    status_url: str = "https://status.example.com"
    billing_url: str = "https://app.example.com/settings/billing"
    docs_url: str = "https://docs.example.com"

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1)
    reopen_window_hours: int = Field(default=48, ge=0)
    # A "did you mean ...?" left unanswered this long is handed to a person (ambiguous).
    clarify_timeout_seconds: float = Field(default=600.0, gt=0)
    # How often each instance returns handoffs of people who went away to the queue and
    # assigns waiting ones to whoever is online (policy.yaml ``assignment``).
    assignment_sweep_seconds: float = Field(default=30.0, gt=0)
    # Conversation content older than this is redacted by `triagebot privacy retention`.
    retention_days: int | None = Field(default=None, ge=1)

    # Learning from escalations (README "Teaching the bot from escalations"): how unanswered
    # questions are clustered ("auto": sentence embeddings when the embeddings extra is
    # installed, tf-idf otherwise), the clustering's cosine-distance cut (unset: 0.5 with
    # embeddings, classifier/mining.py's default with tf-idf), how far back questions count, and
    # the gate a retrained model must pass (unset precision: the model's own target).
    suggestion_clustering: Literal["auto", "tfidf", "embeddings"] = "auto"
    suggestion_distance: float | None = Field(default=None, gt=0, le=2)
    suggestion_window_days: int = Field(default=90, ge=1)
    gate_min_precision: float | None = Field(default=None, gt=0, le=1)
    gate_max_coverage_drop: float = Field(default=0.05, ge=0, le=1)

    # Hardening (README "Security"): the usage CSV import's own body limit (every other route
    # has max_body_bytes); web chat messages accepted per visitor and per client address in a
    # sliding window; reverse proxies whose X-Forwarded-For/-Proto are believed (comma-
    # separated addresses or networks, "*" for any; default: none, the peer address is used).
    max_import_body_bytes: int = Field(default=20_000_000, ge=1024)
    webchat_max_per_visitor: int = Field(default=20, ge=1)
    webchat_max_per_address: int = Field(default=120, ge=1)
    webchat_rate_window_seconds: float = Field(default=60.0, gt=0)
    trusted_proxies: str = ""

    # Telegram deep links for link tokens (https://t.me/<username>?start=<token>): the bot's
    # username without "@"; unset, the CLI and API return the token without a link.
    telegram_bot_username: str | None = Field(default=None, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _default_model_path(cls, data: Any) -> Any:
        """Without an explicit MODEL_PATH, the file is named after the backend."""
        if isinstance(data, dict) and not any(k.lower() == "model_path" for k in data):
            backend = next((v for k, v in data.items() if k.lower() == "model_backend"), None)
            if backend in ("tfidf", "embeddings"):
                data = {**data, "model_path": ROOT / "var" / "models" / f"faq-{backend}.joblib"}
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        secret = self.telegram_webhook_secret
        if self.telegram_bot_token is not None and secret is None:
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET must be set when TELEGRAM_BOT_TOKEN is set "
                "(the webhook refuses every update without it)"
            )
        if secret is not None:
            value = secret.get_secret_value()
            if self.environment == "prod" and (value.lower() in PLACEHOLDERS or len(value) < 16):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_SECRET is a placeholder or shorter than 16 characters"
                )
            allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
            if not value or len(value) > 256 or not set(value) <= allowed:
                raise ValueError(
                    "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                    "(Telegram's rule for secret_token)"
                )
        return self

    @model_validator(mode="after")
    def _check_whatsapp(self) -> Settings:
        if self.whatsapp_access_token is not None and (
            self.whatsapp_app_secret is None or self.whatsapp_phone_number_id is None
        ):
            raise ValueError(
                "WHATSAPP_APP_SECRET and WHATSAPP_PHONE_NUMBER_ID must be set when "
                "WHATSAPP_ACCESS_TOKEN is set (the webhook refuses every request without "
                "the app secret)"
            )
        return self

    @model_validator(mode="after")
    def _check_session_secret(self) -> Settings:
        if self.environment == "prod" and self.session_secret is None:
            raise ValueError(
                "SESSION_SECRET must be set in prod (32+ random characters): it signs the "
                "console's session cookies, which must survive restarts and be shared by "
                "every instance"
            )
        if (
            self.session_secret is not None
            and self.session_secret.get_secret_value().lower() in PLACEHOLDERS
        ):
            raise ValueError("SESSION_SECRET is a placeholder")
        return self

    @model_validator(mode="after")
    def _check_webchat_secret(self) -> Settings:
        if self.environment == "prod" and self.webchat_secret is None:
            raise ValueError(
                "WEBCHAT_SECRET must be set in prod (16+ random characters): it signs the web "
                "chat's visitor cookies, which must survive restarts and be shared by every "
                "instance, or every open chat is cut off"
            )
        if (
            self.webchat_secret is not None
            and self.webchat_secret.get_secret_value().lower() in PLACEHOLDERS
        ):
            raise ValueError("WEBCHAT_SECRET is a placeholder")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    # PUBLIC_URL follows HOST/PORT when unset (issue 14): PORT=8080 alone gives
    # http://127.0.0.1:8080 in links and banners, not the default port's URL.
    @model_validator(mode="after")
    def _public_url_follows_port(self) -> Settings:
        if "public_url" not in self.model_fields_set:
            wildcard = ("0.0.0.0", "::", "")  # noqa: S104 (compared, not bound)
            host = "127.0.0.1" if self.host in wildcard else self.host
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.port}"
        return self


def load_settings() -> Settings:
    """Read settings, turning validation errors into one readable message."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise SystemExit("Invalid configuration:\n" + "\n".join(lines)) from None
