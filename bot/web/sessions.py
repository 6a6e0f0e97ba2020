"""Console sessions: a signed, expiring cookie with a per-session CSRF token, and a limiter of
failed logins.

The cookie holds ``{"u": user id or None, "sid": session id, "iat": issued-at, "exp": expiry,
"csrf": token}`` as base64url JSON followed by an HMAC-SHA256 signature of it (compared in
constant time).
Nothing secret is in the cookie; it cannot be forged or prolonged without the key. A session
without a user (``u`` is None) exists only to carry the CSRF token of the login form. The
user's row is read on every request, so deactivating a user or changing a role applies at
once. A logged-in session is also a row (``staff_sessions``) named by the cookie's ``sid``:
logging out or deactivating the user revokes the user's sessions by id, so every copy of their
cookies is refused from then on, whatever the clock (``handoff.users.revoke_sessions``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

COOKIE_NAME = "tb_console"
FLASH_COOKIE = "tb_console_flash"
COOKIE_PATH = "/console"
SESSION_SECONDS = 12 * 3600
ANONYMOUS_SECONDS = 2 * 3600
CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class ConsoleSession:
    """A verified session: who (None before login), when it was issued and expires, CSRF."""

    user_id: int | None
    issued_at: int
    expires_at: int
    csrf: str
    session_id: str | None = None


class SessionSigner:
    """Issues and verifies console session cookies (and short signed flash messages)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 characters")
        self._key = hashlib.sha256(b"triagebot-console-session:" + secret.encode()).digest()

    @classmethod
    def from_setting(cls, secret: str | None) -> SessionSigner:
        """The configured secret, or a random one for this process (logged, not the value)."""
        if secret is None:
            logger.warning(
                "SESSION_SECRET is not set: using a random key, so console sessions will not "
                "survive a restart (set it in production)"
            )
            secret = secrets.token_urlsafe(48)
        return cls(secret)

    # ---------------------------------------------------------------------- low level
    def sign(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        ).rstrip(b"=")
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return body.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        """The signed data, or None when the value is missing, malformed or forged."""
        if not value or len(value) > 4096 or value.count(".") != 1:
            return None
        body, _, mac = value.partition(".")
        expected = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        try:
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
            if not hmac.compare_digest(given, expected):
                return None
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------------ sessions
    def issue(
        self,
        user_id: int | None,
        *,
        session_id: str | None = None,
        now: float | None = None,
    ) -> tuple[ConsoleSession, str]:
        """A new session (with a fresh CSRF token) and its cookie value."""
        issued = int(now if now is not None else time.time())
        lifetime = SESSION_SECONDS if user_id is not None else ANONYMOUS_SECONDS
        session = ConsoleSession(
            user_id, issued, issued + lifetime, secrets.token_urlsafe(32), session_id
        )
        data = {"u": user_id, "iat": issued, "exp": session.expires_at, "csrf": session.csrf}
        if session_id is not None:
            data["sid"] = session_id
        return session, self.sign(data)

    def verify(self, value: str | None, *, now: float | None = None) -> ConsoleSession | None:
        """The session in a genuine, unexpired cookie, else None."""
        data = self.unsign(value)
        if data is None:
            return None
        user_id, issued, expires, csrf = (data.get(k) for k in ("u", "iat", "exp", "csrf"))
        session_id = data.get("sid")
        if session_id is not None and not isinstance(session_id, str):
            return None
        if not (
            (user_id is None or (isinstance(user_id, int) and not isinstance(user_id, bool)))
            and isinstance(issued, int)
            and isinstance(expires, int)
            and isinstance(csrf, str)
            and len(csrf) >= 32
        ):
            return None
        current = now if now is not None else time.time()
        if expires <= current or issued > current + CLOCK_SKEW_SECONDS:
            return None
        if expires - issued > SESSION_SECONDS:
            return None
        return ConsoleSession(user_id, issued, expires, csrf, session_id)


def csrf_ok(session: ConsoleSession | None, token: str | None) -> bool:
    """Whether a form's token matches the session's (constant-time comparison)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode("utf-8", "surrogatepass"))


class LoginLimiter:
    """Counts failed logins per (email, client address) in memory, in a sliding window.

    In-process only: with several instances each keeps its own count (a reverse proxy's rate
    limit is the stronger guard there).
    """

    def __init__(
        self, max_failures: int = 5, window_seconds: float = 900.0, max_keys: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        return times

    def retry_after(self, email: str, address: str, *, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0 when allowed now)."""
        current = now if now is not None else time.monotonic()
        key = (email.strip().lower(), address)
        with self._lock:
            times = self._recent(key, current)
            if len(times) < self.max_failures:
                return 0.0
            return max(times[0] + self.window_seconds - current, 1.0)

    def failed(self, email: str, address: str, *, now: float | None = None) -> None:
        current = now if now is not None else time.monotonic()
        key = (email.strip().lower(), address)
        with self._lock:
            if key not in self._failures and len(self._failures) >= self.max_keys:
                self._prune(current)
            times = self._recent(key, current)
            times.append(current)
            self._failures[key] = times

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._failures.pop((email.strip().lower(), address), None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        while len(self._failures) >= self.max_keys:  # still full: forget the oldest key
            del self._failures[next(iter(self._failures))]
