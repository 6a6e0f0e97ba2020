"""Retrain the served intent model in a background thread, one run at a time, then reload it.

One :class:`Retrainer` per app (built by the app factory, shared by the console and the API).
A run is either the plain retrain (``train`` then ``reload``) or a *job* given to
:meth:`Retrainer.start` — the gated retrain after an admin taught the bot
(``bot/teaching.py``), which swaps the model in itself and returns why it refused to, if it did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

logger = logging.getLogger(__name__)

Job = Callable[[], str | None]
"""A background run: None when it succeeded, else why it kept the old model."""


@dataclass(frozen=True)
class RetrainState:
    running: bool
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    what: str = "retrain"  # "retrain", or what a job teaches ("suggestion 3", ...)
    suggestion_id: int | None = None


class Retrainer:
    """Runs one retrain at a time in a thread; a second start while one runs is refused."""

    def __init__(self, train: Callable[[], object], reload: Callable[[], None]) -> None:
        self._train = train
        self._reload = reload
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._error: str | None = None
        self._what = "retrain"
        self._suggestion_id: int | None = None

    def start(
        self, job: Job | None = None, *, what: str = "retrain", suggestion_id: int | None = None
    ) -> bool:
        """Start a retrain (or ``job``); False when one is already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._started_at = datetime.now(UTC)
            self._finished_at = None
            self._error = None
            self._what = what
            self._suggestion_id = suggestion_id
            self._thread = threading.Thread(
                target=self._run, args=(job or self._plain,), name="retrain", daemon=True
            )
            self._thread.start()
            return True

    def _plain(self) -> str | None:
        self._train()
        self._reload()
        return None

    def _run(self, job: Job) -> None:
        logger.info("retraining the intent model (%s)", self._what)
        error: str | None = None
        try:
            error = job()
        except Exception as exc:  # a thread boundary: logged, recorded and shown to admins
            logger.exception("retraining failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._finished_at = datetime.now(UTC)
            self._error = error
        if error is None:
            logger.info("retrained and reloaded the intent model")
        else:
            logger.warning("retrain (%s) kept the old model: %s", self._what, error)

    def state(self) -> RetrainState:
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return RetrainState(
                running,
                self._started_at,
                self._finished_at,
                self._error,
                self._what,
                self._suggestion_id,
            )

    def running(self) -> bool:
        return self.state().running

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running retrain; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True
