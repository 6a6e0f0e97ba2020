"""The served intent model and FAQ: loaded at start-up, reloadable without a restart.

Every instance watches the files it loaded (model, FAQ, policy): when an admin edits an
answer or a threshold, or retrains, on any instance sharing the data folder, the others
reload within ``CONFIG_RELOAD_SECONDS`` (:meth:`ModelHolder.reload_if_changed`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.triage import IntentInfo, TriageConfig
from classifier import IntentClassifier, ModelIncompatibleError, load_faq
from classifier.faq import faq_file
from handoff.escalation import PolicyConfig, load_policy, strategic_term
from handoff.hours import load_hours
from handoff.message_templates import load_catalog

logger = logging.getLogger(__name__)


class ModelHolder:
    """Holds the classifier, FAQ answers and policy currently in use."""

    def __init__(
        self,
        model_path: Path,
        faq_path: Path,
        policy_path: Path,
        links: dict[str, str],
        text_limits: dict[str, int],
        reopen_window: timedelta,
        alert_options: dict[str, Any] | None = None,
        *,
        hours_path: Path | None = None,
        templates_path: Path | None = None,
    ) -> None:
        self.model_path = model_path
        self.faq_path = faq_path
        self.policy_path = policy_path
        self.hours_path = hours_path  # business hours (absent: 24/7)
        self.templates_path = templates_path  # approved WhatsApp templates (absent: none)
        self._links = links
        self._text_limits = text_limits
        self._reopen_window = reopen_window
        self._alert_options = dict(alert_options or {})
        self._lock = threading.Lock()
        self._classifier: IntentClassifier | None = None
        self._config: TriageConfig | None = None
        self.error: str | None = None
        self._loaded_stamp: tuple[Any, ...] | None = None
        self._failed_stamp: tuple[Any, ...] | None = None

    def _stamp(self) -> tuple[Any, ...]:
        """What identifies the files' current contents: size and modification time of each."""
        stamp: list[Any] = []
        files = (self.model_path, faq_file(self.faq_path), self.policy_path)
        for path in (*files, self.hours_path, self.templates_path):
            if path is None:
                stamp.append(None)
                continue
            try:
                info = path.stat()
                stamp.append((info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    def reload_if_changed(self) -> bool:
        """Reload when a file changed since the last load; True when it reloaded.

        A file that does not validate (a hand edit gone wrong) is logged once and the
        configuration in use is kept.
        """
        stamp = self._stamp()
        if stamp == self._loaded_stamp or stamp == self._failed_stamp:
            return False
        try:
            self.load()
        except Exception:
            self._failed_stamp = stamp
            logger.exception("the changed FAQ, policy or model does not load: keeping the old")
            return False
        logger.info("FAQ, policy or model changed on disk: reloaded")
        return True

    def load(self) -> None:
        """(Re)load FAQ, policy and model; a missing/incompatible model is reported, not fatal."""
        stamp = self._stamp()  # before reading: a change made during the load is seen next time
        faq = load_faq(self.faq_path)
        policy: PolicyConfig = load_policy(self.policy_path)
        hours = load_hours(self.hours_path)
        templates = load_catalog(self.templates_path)
        intents = {
            name: IntentInfo(category=spec.category, answer=spec.answer, title=spec.display_title)
            for name, spec in faq.intents.items()
        }
        config = TriageConfig(
            policy=policy,
            intents=intents,
            links=self._links,
            text_limits=self._text_limits,
            reopen_window=self._reopen_window,
            hours=hours,
            whatsapp_templates=templates,
            **self._alert_options,
        )
        classifier: IntentClassifier | None = None
        error: str | None = None
        if not self.model_path.exists():
            error = f"no model at {self.model_path}: run 'triagebot model train'"
        else:
            try:
                classifier = IntentClassifier.load(self.model_path)
                # Warm up before serving: the embeddings backend loads its sentence encoder
                # (~1-5 s) on the first prediction, which should not be a customer's message.
                classifier.predict_one("hello")
            except ModelIncompatibleError as exc:
                error = str(exc)
            except RuntimeError as exc:  # the embeddings extra is not installed
                error = f"cannot use the model at {self.model_path}: {exc}"
        if error:
            logger.warning("intent model unavailable, every message will escalate: %s", error)
        with self._lock:
            self._classifier = classifier
            self._config = config
            self.error = error
            self._loaded_stamp = stamp
            self._failed_stamp = None

    def classifier(self) -> IntentClassifier | None:
        return self._classifier

    def config(self) -> TriageConfig:
        if self._config is None:
            raise RuntimeError("ModelHolder.load() was not called")
        return self._config

    def status(self) -> dict[str, Any]:
        """Model status for /healthz and the admin page."""
        clf = self._classifier
        if clf is None:
            return {"status": "missing", "error": self.error, "path": str(self.model_path)}
        meta = dict(getattr(clf, "metadata_", {}) or {})
        return {
            "status": "ok",
            "path": str(self.model_path),
            "backend": meta.get("backend"),
            "trained_at": meta.get("trained_at"),
            "intents": len(meta.get("intents", []) or []),
        }


def policy_guard(policy_path: Path) -> Callable[[str], bool] | None:
    """True when the escalation policy's strategic terms hand a text to a person."""
    try:
        policy = load_policy(policy_path)
    except (OSError, ValueError):
        return None
    return lambda text: strategic_term(policy, text) is not None
