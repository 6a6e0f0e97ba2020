"""A sliding-window rate limiter in memory, and the web chat's use of it.

In-process only: with several instances each counts its own share (a reverse proxy's rate
limit is the stronger guard there). Keys are bounded, so a flood of new keys (cookie-less
visitors, many addresses) cannot grow it without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


class SlidingWindowLimiter:
    """At most ``max_events`` per key within any ``window_seconds``."""

    def __init__(self, max_events: int, window_seconds: float, max_keys: int = 50_000) -> None:
        self.max_events = max_events
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._events.get(key, deque())
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        return times

    def hit(self, key: str, *, now: float | None = None) -> float:
        """Count one event for ``key``: 0 when allowed, else seconds until one would be."""
        current = now if now is not None else time.monotonic()
        with self._lock:
            times = self._recent(key, current)
            if len(times) >= self.max_events:
                return max(times[0] + self.window_seconds - current, 0.001)
            if key not in self._events and len(self._events) >= self.max_keys:
                self._prune(current)
            times.append(current)
            self._events[key] = times
            return 0.0

    def _prune(self, now: float) -> None:
        for key in list(self._events):
            if not self._recent(key, now):
                del self._events[key]
        while len(self._events) >= self.max_keys:  # still full: forget the oldest key
            del self._events[next(iter(self._events))]


SLOW_DOWN = (
    "You are sending messages faster than we can read them. "
    "Please wait a moment; your message will be sent again automatically."
)


@dataclass
class ChatRateLimits:
    """The web chat's limits: per visitor (cookie) and per client address."""

    per_visitor: SlidingWindowLimiter
    per_address: SlidingWindowLimiter

    @classmethod
    def build(cls, per_visitor: int, per_address: int, window_seconds: float) -> ChatRateLimits:
        return cls(
            SlidingWindowLimiter(per_visitor, window_seconds),
            SlidingWindowLimiter(per_address, window_seconds),
        )

    def retry_after(self, visitor_id: str, address: str) -> int:
        """0 when this visitor, from this address, may send a message now; else whole seconds
        to wait (the message is not counted then)."""
        wait = self.per_address.hit(address) or self.per_visitor.hit(visitor_id)
        return math.ceil(wait) if wait else 0
