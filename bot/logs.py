"""Logging set-up: one format, secrets redacted from every record.

The Telegram token sits inside Bot API URLs, which HTTP client libraries log; the filter
below replaces any configured secret with ``[REDACTED]`` wherever it appears in a record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable


class RedactSecrets(logging.Filter):
    """Removes the given secret strings from log messages and their arguments."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "[REDACTED]")
        if redacted != message:
            record.msg = redacted
            record.args = None
        # tracebacks (logger.exception) can quote URLs too: format once here and redact
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self._secrets:
                record.exc_text = record.exc_text.replace(secret, "[REDACTED]")
        return True


def install_redaction(secrets: Iterable[str]) -> RedactSecrets:
    """Attach a redacting filter to the root logger's handlers and to our noisy loggers."""
    flt = RedactSecrets(secrets)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(flt)
    for name in ("httpx", "httpcore", "telegram", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(flt)
    # httpx logs every request URL at INFO, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return flt


def configure_logging(level: str) -> None:
    """Plain, single-line log records on stderr."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # alembic announces every plugin it sets up at INFO; keep only the migrations it runs
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
