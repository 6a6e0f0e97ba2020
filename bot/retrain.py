"""Retrain the served intent model in a background thread, one run at a time, then reload it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainState:
    running: bool
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class Retrainer:
    """Runs ``train`` then ``reload`` in a thread; a second start while one runs is refused."""

    def __init__(self, train: Callable[[], object], reload: Callable[[], None]) -> None:
        self._train = train
        self._reload = reload
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._error: str | None = None

    def start(self) -> bool:
        """Start a retrain; False when one is already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._started_at = datetime.now(UTC)
            self._finished_at = None
            self._error = None
            self._thread = threading.Thread(target=self._run, name="retrain", daemon=True)
            self._thread.start()
            return True

    def _run(self) -> None:
        logger.info("retraining the intent model")
        error: str | None = None
        try:
            self._train()
            self._reload()
        except Exception as exc:  # a thread boundary: logged, recorded and shown to admins
            logger.exception("retraining failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._finished_at = datetime.now(UTC)
            self._error = error
        if error is None:
            logger.info("retrained and reloaded the intent model")

    def state(self) -> RetrainState:
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return RetrainState(running, self._started_at, self._finished_at, self._error)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running retrain; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True
