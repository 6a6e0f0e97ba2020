"""Which secret signs the web chat's visitor cookies, so that chats survive a restart.

* ``WEBCHAT_SECRET`` set: that one (required in prod, see ``bot/settings.py``).
* dev (``make run``): generated once and kept in a file (``var/webchat_secret``, mode 0600),
  then reused by every start, so a restart does not cut off open chats.
* test: a random one per process (tests never read or write a developer's ``var/``).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_LENGTH = 16


def resolve(configured: str | None, environment: str, path: Path) -> str | None:
    """The secret to use; None means "a random one for this process" (tests)."""
    if configured is not None:
        return configured
    if environment == "dev":
        return load_or_create(path)
    return None


def load_or_create(path: Path) -> str:
    """Read the persisted secret, or generate and persist one (owner-only, created once).

    Raises ValueError naming the file when it holds something too short to be a secret.
    """
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return _create(path)
    if len(secret) < MIN_LENGTH:
        raise ValueError(
            f"{path} does not hold a web chat secret ({MIN_LENGTH}+ characters): "
            "delete it to generate a new one, or set WEBCHAT_SECRET"
        )
    return secret


def _create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return load_or_create(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    logger.info("generated the web chat secret in %s (kept across restarts)", path)
    return secret
