"""Teaching the bot from escalations: accept a suggestion (or approve a correction), write the
FAQ, retrain behind a gate, swap the model in — or put everything back and say why.

The flow of an accept (``POST /api/v1/suggestions/{id}/accept`` or the admin page):

1. checks (admin; no retrain running; the suggestion is open; the answer passes the same
   template checks as the admin page's FAQ editor; a new intent needs an answer);
2. the examples (the suggestion's messages, or the admin's edited list) go through a
   personal-data mask (``handoff.text.mask_personal_data``) and are written to
   ``intents.yaml`` — only the lines that change (``classifier.faq_edit.add_examples``);
3. the suggestion becomes ``training`` and the gated retrain starts in the background
   (:class:`bot.retrain.Retrainer`, one at a time): a candidate model is trained beside the
   served one and judged by ``classifier.gate`` against the served model's figures;
4. passed: the candidate replaces the served model file and is loaded (other instances reload
   it on the file change); the suggestion is ``accepted`` with its before/after figures.
   Refused (or training failed): the FAQ file gets its previous text back byte for byte, the
   old model stays, and the suggestion is ``open`` again with the reason in ``error``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.model import ModelHolder, policy_guard
from bot.retrain import Retrainer
from bot.template_limits import SAMPLE_VARIABLES, check_limits
from classifier import IntentClassifier, load_faq, train_faq_model
from classifier.faq import ANSWERED_CATEGORIES, FaqError
from classifier.faq_edit import FaqChange, add_examples, check_answer, restore_text
from classifier.gate import Gate, judge
from handoff import access, corrections, suggestion_views, suggestions
from handoff.access import Principal
from handoff.db import write_lock
from handoff.errors import Conflict, InvalidInput
from handoff.suggestions import Miner
from handoff.text import mask_personal_data

logger = logging.getLogger(__name__)

RUNNING = "a retrain is running: try again when it has finished (GET /api/v1/model)"


@dataclass(frozen=True)
class Lesson:
    """What an admin teaches: examples for ``intent`` (new or existing)."""

    intent: str
    answer: str | None = None
    category: str = "faq"
    examples: Sequence[str] | None = None  # None: the suggestion's messages
    title: str | None = None


class Teacher:
    """Accepts suggestions and approves corrections through one gated retrain path."""

    def __init__(
        self,
        engine: Engine,
        models: ModelHolder,
        retrainer: Retrainer,
        miner: Miner,
        *,
        backend: str,
        gate: Gate,
    ) -> None:
        self._engine = engine
        self._models = models
        self._retrainer = retrainer
        self._miner = miner
        self._backend = backend
        self._gate = gate
        self._lock = threading.Lock()

    @property
    def faq_path(self) -> Path:
        return Path(self._models.faq_path)

    # -------------------------------------------------------------------------- accept
    def accept(self, principal: Principal, suggestion_id: int, lesson: Lesson) -> None:
        """Write the lesson to the FAQ and start the gated retrain (see the module)."""
        access.require_admin(principal, "teach the bot")
        with self._lock:
            if self._retrainer.running():
                raise Conflict(RUNNING)
            with Session(self._engine) as session:
                suggestion = suggestions.get(session, suggestion_id)
                if suggestion.status != "open":
                    raise Conflict(f"suggestion {suggestion_id} is {suggestion.status}, not open")
                given = lesson.examples
                if given is None:
                    given = suggestion_views.view(session, suggestion).examples
            examples = _masked(given)
            change = self._write(lesson, examples)
            try:
                with write_lock(self._engine), Session(self._engine) as session:
                    suggestions.transition(
                        session,
                        suggestions.get(session, suggestion_id),
                        "begin_training",
                        intent=lesson.intent,
                        decided_by_user_id=principal.user_id,
                        error=None,
                    )
                    session.commit()
            except Exception:
                restore_text(self.faq_path, change.previous_text)
                raise
            job = self._job(change, lesson.intent, suggestion_id)
            if not self._retrainer.start(
                job, what=f"suggestion {suggestion_id}", suggestion_id=suggestion_id
            ):  # a plain retrain started from the console in between
                restore_text(self.faq_path, change.previous_text)
                self._finish(suggestion_id, {}, RUNNING)
                raise Conflict(RUNNING)
        self._miner.forget()

    def dismiss(self, principal: Principal, suggestion_id: int) -> None:
        access.require_admin(principal, "dismiss suggestions")
        with write_lock(self._engine), Session(self._engine) as session:
            suggestion = suggestions.get(session, suggestion_id)
            suggestions.transition(
                session, suggestion, "dismiss", decided_by_user_id=principal.user_id
            )
            session.commit()
        self._miner.forget()

    # ----------------------------------------------------------------------- corrections
    def review_correction(self, principal: Principal, correction_id: int, approve: bool) -> bool:
        """Approve (the message becomes an example of the right intent, then the gated
        retrain) or reject a correction. True when a retrain started."""
        access.require_admin(principal, "review corrections")
        with self._lock:
            if approve and self._retrainer.running():
                raise Conflict(RUNNING)
            with write_lock(self._engine), Session(self._engine) as session:
                found = corrections.get(session, correction_id)
                corrections.review(session, principal, found.correction, approve)
                if not approve:
                    session.commit()
                    return False
                intent = found.correction.correct_intent
                try:
                    change = add_examples(self.faq_path, intent, _masked([found.text]))
                except FaqError as exc:
                    if "no new examples" in str(exc):  # already an example: nothing to learn
                        session.commit()
                        return False
                    raise InvalidInput(str(exc)) from exc
                session.commit()
            job = self._job(change, intent, None)
            if not self._retrainer.start(job, what=f"correction {correction_id}"):
                restore_text(self.faq_path, change.previous_text)
                raise Conflict(RUNNING)
            return True

    # ---------------------------------------------------------------------------- pieces
    def _write(self, lesson: Lesson, examples: list[str]) -> FaqChange:
        faq = load_faq(self.faq_path)
        existing = faq.intents.get(lesson.intent)
        answer = lesson.answer.strip() if lesson.answer and lesson.answer.strip() else None
        if existing is None:
            if lesson.category not in ANSWERED_CATEGORIES:
                raise InvalidInput(
                    f"category: must be one of {sorted(ANSWERED_CATEGORIES)} for a new intent"
                )
            if answer is None:
                raise InvalidInput(f"answer: the new intent {lesson.intent!r} needs an answer")
        elif answer is not None and existing.category not in ANSWERED_CATEGORIES:
            raise InvalidInput(f"answer: intent {lesson.intent!r} is never answered automatically")
        checked: str | None = None
        if answer is not None:
            variables = {**self._models.config().links, **SAMPLE_VARIABLES}
            try:
                check_limits(answer, variables)
                checked = check_answer(answer, variables)
            except (FaqError, ValueError) as exc:
                raise InvalidInput(f"answer: {exc}") from exc
        try:
            return add_examples(
                self.faq_path,
                lesson.intent,
                examples,
                answer=checked,
                category=lesson.category if existing is None else None,
                title=lesson.title if existing is None else None,
            )
        except FaqError as exc:
            raise InvalidInput(f"examples: {exc}") from exc

    def _job(
        self, change: FaqChange, intent: str, suggestion_id: int | None
    ) -> Callable[[], str | None]:
        def run() -> str | None:
            result: dict[str, Any] = {"intent": intent, "examples": len(change.added)}
            try:
                reason = self._train_and_swap(result)
            except Exception as exc:
                restore_text(self.faq_path, change.previous_text)
                self._models.load()
                reason = f"training failed: {type(exc).__name__}: {exc}"
                self._finish(suggestion_id, result, reason)
                raise
            if reason is not None:
                restore_text(self.faq_path, change.previous_text)
                self._models.load()
            self._finish(suggestion_id, result, reason)
            return reason

        return run

    def _train_and_swap(self, result: dict[str, Any]) -> str | None:
        model_path = Path(self._models.model_path)
        served = IntentClassifier.read_metadata(model_path) if model_path.exists() else {}
        candidate_path = model_path.with_name(f"{model_path.stem}.candidate{model_path.suffix}")
        oos = (served.get("cv") or {}).get("oos_prior")
        candidate = train_faq_model(
            self.faq_path,
            candidate_path,
            backend=self._backend,
            target_precision=float(served.get("target_precision") or 0.95),
            unknown_share=float(oos) if isinstance(oos, int | float) else 0.2,
            guard=policy_guard(self._models.policy_path),
        )
        verdict = judge(self._gate, served or None, candidate, load_faq(self.faq_path))
        result.update(
            before=verdict.before.as_dict(),
            after={**verdict.after.as_dict(), "existing_coverage": verdict.existing_coverage},
            passed=verdict.passed,
            reason=verdict.reason,
        )
        if not verdict.passed:
            candidate_path.unlink(missing_ok=True)
            candidate_path.with_suffix(".json").unlink(missing_ok=True)
            return verdict.reason
        os.replace(candidate_path.with_suffix(".json"), model_path.with_suffix(".json"))
        os.replace(candidate_path, model_path)
        self._models.load()
        return None

    def _finish(
        self, suggestion_id: int | None, result: dict[str, Any], reason: str | None
    ) -> None:
        if suggestion_id is None:
            return
        result = {**result, "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        with write_lock(self._engine), Session(self._engine) as session:
            suggestion = suggestions.get(session, suggestion_id)
            if suggestion.status != "training":
                return
            if reason is None:
                suggestions.transition(session, suggestion, "accept", result=result, error=None)
            else:
                suggestions.transition(
                    session, suggestion, "refuse", result=result, error=reason[:1000]
                )
            session.commit()
        self._miner.forget()


def _masked(examples: Sequence[str]) -> list[str]:
    """The examples with personal data masked, blank ones and repeats left out."""
    seen: set[str] = set()
    kept: list[str] = []
    for example in examples:
        text = " ".join(mask_personal_data(example).split())
        if text and suggestions.has_letter(text) and text.lower() not in seen:
            seen.add(text.lower())
            kept.append(text)
    if not kept:
        raise InvalidInput("examples: none left to learn from")
    return kept
