"""The served intent model and FAQ: loaded at start-up, reloadable without a restart."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.triage import IntentInfo, TriageConfig
from classifier import IntentClassifier, ModelIncompatibleError, load_faq
from handoff.escalation import PolicyConfig, load_policy

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
    ) -> None:
        self.model_path = model_path
        self.faq_path = faq_path
        self.policy_path = policy_path
        self._links = links
        self._text_limits = text_limits
        self._reopen_window = reopen_window
        self._alert_options = dict(alert_options or {})
        self._lock = threading.Lock()
        self._classifier: IntentClassifier | None = None
        self._config: TriageConfig | None = None
        self.error: str | None = None

    def load(self) -> None:
        """(Re)load FAQ, policy and model; a missing/incompatible model is reported, not fatal."""
        faq = load_faq(self.faq_path)
        policy: PolicyConfig = load_policy(self.policy_path)
        intents = {
            name: IntentInfo(category=spec.category, answer=spec.answer)
            for name, spec in faq.intents.items()
        }
        config = TriageConfig(
            policy=policy,
            intents=intents,
            links=self._links,
            text_limits=self._text_limits,
            reopen_window=self._reopen_window,
            **self._alert_options,
        )
        classifier: IntentClassifier | None = None
        error: str | None = None
        if not self.model_path.exists():
            error = f"no model at {self.model_path}: run 'triagebot model train'"
        else:
            try:
                classifier = IntentClassifier.load(self.model_path)
            except ModelIncompatibleError as exc:
                error = str(exc)
        if error:
            logger.warning("intent model unavailable, every message will escalate: %s", error)
        with self._lock:
            self._classifier = classifier
            self._config = config
            self.error = error

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
