"""Whether a retrained FAQ model may replace the served one (the gate of taught intents).

A model retrained after an admin taught the bot (new examples or a new intent) is served only
when, by its cross-validation (``metadata_["cv"]``):

* its **precision** over all answers is at least ``min_precision`` (by default the precision
  target it was trained for), and
* the **coverage of the intents the served model already had** — the share of their examples
  that cross-validation answered automatically — fell by at most ``max_coverage_drop``
  (0.05: five points) from the served model's coverage.

Otherwise the candidate is thrown away with the reason, and the served model stays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from classifier.faq import ANSWERED_CATEGORIES, Faq
from classifier.model import IntentClassifier


@dataclass(frozen=True)
class Gate:
    min_precision: float | None = None  # None: the candidate's own target precision
    max_coverage_drop: float = 0.05


@dataclass(frozen=True)
class Figures:
    coverage: float | None
    precision: float | None

    @classmethod
    def of(cls, metadata: Mapping[str, Any] | None) -> Figures:
        cv = (metadata or {}).get("cv") or {}
        return cls(_number(cv.get("coverage")), _number(cv.get("precision")))

    def as_dict(self) -> dict[str, float | None]:
        return {"coverage": self.coverage, "precision": self.precision}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str | None
    before: Figures
    after: Figures
    existing_coverage: float | None  # the candidate's coverage of the served model's intents


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def existing_coverage(
    candidate: IntentClassifier, faq: Faq, existing: Collection[str]
) -> float | None:
    """Of the examples of the answered intents in ``existing``, the share cross-validation
    answered automatically (the ``coverage`` of ``metadata_["cv"]`` on those intents only)."""
    _texts, labels = faq.training_data()
    answers = candidate.out_of_fold_answers()
    if len(answers) != len(labels):
        return None
    answered_intents = {
        name
        for name, spec in faq.intents.items()
        if spec.category in ANSWERED_CATEGORIES and name in existing
    }
    rows = [
        a is not None for a, label in zip(answers, labels, strict=True) if label in answered_intents
    ]
    return sum(rows) / len(rows) if rows else None


def judge(
    gate: Gate,
    served: Mapping[str, Any] | None,
    candidate: IntentClassifier,
    faq: Faq,
) -> Verdict:
    """The gate's verdict on ``candidate`` (trained on ``faq``) against the served model's
    metadata ``served`` (None: nothing served, only the precision counts)."""
    before = Figures.of(served)
    after = Figures.of(candidate.metadata_)
    existing = set((served or {}).get("intents") or [])
    kept = existing_coverage(candidate, faq, existing) if existing else None
    target = gate.min_precision
    if target is None:
        target = float(candidate.metadata_.get("target_precision") or 0.95)
    reason: str | None = None
    if after.precision is None:
        reason = "the new model has no cross-validated precision (too few examples per intent)"
    elif after.precision < target:
        reason = f"cross-validated precision {after.precision:.1%} is below the target {target:.1%}"
    elif before.coverage is not None and kept is not None:
        drop = before.coverage - kept
        if drop > gate.max_coverage_drop:
            reason = (
                f"coverage of the existing intents would fall from {before.coverage:.1%} to"
                f" {kept:.1%} (more than {gate.max_coverage_drop * 100:.0f} points)"
            )
    return Verdict(reason is None, reason, before, after, kept)
