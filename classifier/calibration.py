"""Confidence calibration and abstention thresholds, chosen from out-of-fold scores only."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(scores / T)."""

    def nll(log_t: float) -> float:
        logp = log_softmax(scores / np.exp(log_t), axis=1)
        return float(-logp[np.arange(len(y)), y].mean())

    result = minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded")
    return float(np.exp(result.x))


def probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(scores / temperature, axis=1)


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    coverage: float  # share of in-scope messages answered
    precision: float  # share of answers that were right
    answered: int


def answer_curve(
    confidence: np.ndarray,
    answered_ok: np.ndarray,
    correct: np.ndarray,
    in_scope: np.ndarray,
    thresholds: list[float] | None = None,
) -> list[CurvePoint]:
    """Coverage and precision of automatic answers for each threshold.

    ``answered_ok``: the top guess is an intent (not out-of-scope); ``correct``: the top guess
    is the true label; ``in_scope``: the true label is a known intent.
    """
    thresholds = thresholds or [round(x, 2) for x in np.arange(0.0, 1.0, 0.05)] + [0.99]
    n_in = max(int(in_scope.sum()), 1)
    points = []
    for t in thresholds:
        answered = answered_ok & (confidence >= t)
        n = int(answered.sum())
        right = int((answered & correct).sum())
        points.append(
            CurvePoint(
                threshold=float(t),
                coverage=float((answered & in_scope).sum() / n_in),
                precision=float(right / n) if n else 1.0,
                answered=n,
            )
        )
    return points


def choose_threshold(
    confidence: np.ndarray,
    answered_ok: np.ndarray,
    correct: np.ndarray,
    target: float,
    min_answers: int = 20,
) -> float:
    """Lowest confidence threshold whose answers are at least ``target`` precise.

    Sorts candidate answers by confidence and keeps the longest prefix whose running
    precision meets the target (ignoring the first ``min_answers``, too few to judge).
    Returns 1.0 (never answer) when no prefix qualifies.
    """
    conf = np.where(answered_ok, confidence, -1.0)
    order = np.argsort(-conf, kind="stable")
    conf_sorted = conf[order]
    ok = (correct & answered_ok)[order].astype(np.float64)
    valid = conf_sorted >= 0
    ok, conf_sorted = ok[valid], conf_sorted[valid]
    if len(ok) == 0:
        return 1.0
    running = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    qualifying = np.nonzero(running >= target)[0]
    qualifying = qualifying[qualifying >= min(min_answers, len(ok)) - 1]
    if len(qualifying) == 0:
        return 1.0
    k = int(qualifying[-1])
    # Messages tied at this confidence are answered too; with continuous scores ties are rare.
    return float(conf_sorted[k])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = len(confidence)
    if total == 0:
        return 0.0
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            ece += mask.sum() / total * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)
