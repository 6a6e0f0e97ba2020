"""The answer decision: answer only when the answer is likely right, whatever the message was.

Inputs per message: the calibrated confidence of the top intent, its margin over the second,
and the familiarity of the message (``classifier.novelty``). A logistic model turns them into
one *answer score*, the estimated probability that an automatic answer is right, and the bot
answers when it reaches a threshold.

Both are learnt without any out-of-scope data, by simulating it (``RejectionData``):

* in-scope rows: out-of-fold predictions of ordinary k-fold cross-validation;
* unknown-intent rows: *leave-intents-out* folds: the intents are split into groups, a model is
  trained without one group and scores that group's examples, which it has never seen — every
  answer to them is wrong (explicit ``out_of_scope`` examples, where the data has them, are
  in-scope rows whose only right answer is to abstain).

A message less familiar than almost all (``UNFAMILIAR_QUANTILE``) of the right answers in
cross-validation is never answered. The unknown-intent rows are weighted so that they make up
``oos_prior`` of all messages, and the threshold is the lowest answer score at which the
**precision over all answers** — including wrong answers to unknown-intent messages — still
meets the target.

Why a model abstained (``reason``): ``unknown_topic`` when the message is less familiar than
almost all (``UNFAMILIAR_QUANTILE``) of the right answers in cross-validation, or its top guess
is ``out_of_scope``; ``ambiguous`` when the second intent is plausible (≥ ``AMBIGUOUS_SECOND``)
and the top two together hold ≥ ``AMBIGUOUS_TOP_TWO`` of the probability — the right intent is
very likely one of two, so asking "did you mean...?" can settle it; ``low_confidence``
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

UNFAMILIAR_QUANTILE = 0.02
# ``ambiguous``: the second intent is plausible and the top two together are likely right.
AMBIGUOUS_SECOND = 0.1
AMBIGUOUS_TOP_TWO = 0.8
MIN_ANSWERS = 20


def meta_features(conf: np.ndarray, margin: np.ndarray, familiarity: np.ndarray) -> np.ndarray:
    """Columns of the answer-score model: confidence as a logit, margin, familiarity."""
    c = np.clip(np.asarray(conf, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.column_stack([np.log(c / (1 - c)), margin, familiarity])


@dataclass
class RejectionData:
    """Out-of-fold rows for learning the answer decision (see the module docstring)."""

    conf: np.ndarray  # calibrated probability of the top intent
    margin: np.ndarray  # top minus second probability
    second: np.ndarray  # probability of the second intent
    familiarity: np.ndarray
    answerable: np.ndarray  # the top guess is an intent (not out_of_scope)
    correct: np.ndarray  # the top guess is the true label (never, for unknown-intent rows)
    unknown: np.ndarray  # the row is a simulated unknown-intent message

    def weights(self, oos_prior: float) -> np.ndarray:
        """Weight 1 for in-scope rows; unknown-intent rows weighted to ``oos_prior`` of all."""
        n_unknown = int(self.unknown.sum())
        w = np.ones(len(self.conf))
        if n_unknown and 0 < oos_prior < 1:
            n_known = len(self.conf) - n_unknown
            w[self.unknown] = oos_prior / (1 - oos_prior) * n_known / n_unknown
        return w


class AnswerRule:
    """Answer score = P(answer right | confidence, margin, familiarity), and its threshold."""

    def __init__(self) -> None:
        self.coef_ = np.zeros(3)
        self.intercept_ = 0.0
        self.threshold_ = 1.0
        self.unfamiliar_ = -np.inf
        self.fitted_ = False

    def fit(self, data: RejectionData, target: float, oos_prior: float) -> AnswerRule:
        w = data.weights(oos_prior)
        rows = data.answerable
        x = meta_features(data.conf, data.margin, data.familiarity)[rows]
        y = data.correct[rows]
        known_right = data.correct & ~data.unknown
        if known_right.any():
            self.unfamiliar_ = float(
                np.quantile(data.familiarity[known_right], UNFAMILIAR_QUANTILE)
            )
        if len(np.unique(y)) < 2:  # all right or all wrong: nothing to learn from
            self.coef_ = np.array([1.0, 0.0, 0.0])
            self.intercept_ = 0.0
        else:
            model = LogisticRegression(C=1.0, max_iter=1000)
            model.fit(x, y, sample_weight=w[rows])
            self.coef_ = model.coef_[0].astype(np.float64)
            self.intercept_ = float(model.intercept_[0])
        score = self.score(data.conf, data.margin, data.familiarity)
        familiar = data.answerable & (data.familiarity >= self.unfamiliar_)
        self.threshold_ = weighted_threshold(score, familiar, data.correct, w, target)
        self.fitted_ = True
        return self

    def answers(self, data: RejectionData) -> np.ndarray:
        """Which rows the rule answers."""
        score = self.score(data.conf, data.margin, data.familiarity)
        return np.asarray(
            data.answerable & (data.familiarity >= self.unfamiliar_) & (score >= self.threshold_)
        )

    def score(self, conf: np.ndarray, margin: np.ndarray, familiarity: np.ndarray) -> np.ndarray:
        z = meta_features(conf, margin, familiarity) @ self.coef_ + self.intercept_
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def score_one(self, conf: float, margin: float, familiarity: float) -> float:
        c = min(max(conf, 1e-6), 1 - 1e-6)
        z = (
            self.coef_[0] * np.log(c / (1 - c))
            + self.coef_[1] * margin
            + self.coef_[2] * familiarity
            + self.intercept_
        )
        return float(1.0 / (1.0 + np.exp(-z)))


def weighted_threshold(
    score: np.ndarray,
    answerable: np.ndarray,
    correct: np.ndarray,
    weights: np.ndarray,
    target: float,
    min_answers: int = MIN_ANSWERS,
) -> float:
    """Lowest score whose answers (score ≥ it) reach ``target`` weighted precision.

    The longest prefix of candidate answers sorted by score whose running weighted precision
    meets the target (the first ``min_answers`` are too few to judge). 1.0 — never answer —
    when none does.
    """
    candidates = np.nonzero(answerable)[0]
    if len(candidates) == 0:
        return 1.0
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    w = weights[order]
    ok = np.where(correct[order], w, 0.0)
    running = np.cumsum(ok) / np.cumsum(w)
    qualifying = np.nonzero(running >= target)[0]
    qualifying = qualifying[qualifying >= min(min_answers, len(order)) - 1]
    if len(qualifying) == 0:
        return 1.0
    return float(score[order[int(qualifying[-1])]])


def coverage_precision(
    answered: np.ndarray, data: RejectionData, oos_prior: float
) -> tuple[float, float, float]:
    """In-scope coverage, weighted precision over all answers, unknown-intent refusal."""
    w = data.weights(oos_prior)
    known = ~data.unknown
    coverage = float((answered & known).sum() / max(known.sum(), 1))
    total = float(w[answered].sum())
    precision = float(w[answered & data.correct].sum() / total) if total else 1.0
    refusal = float(1 - (answered & data.unknown).sum() / max(data.unknown.sum(), 1))
    return coverage, precision, refusal
