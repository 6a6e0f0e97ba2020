"""Open-set and shift benchmarks of the intent classifier (issue 11).

* ``signal_auroc``: how well each candidate novelty signal tells unseen-intent messages from
  known ones (AUROC), on the out-of-scope protocol's test set — the measurement behind the
  choice of signals in ``classifier.novelty`` and ``classifier.rejection``.
* ``few_shot``: the phrasing-shift protocol: train on 10 or 30 BANKING77 examples per intent
  (Casanueva et al. 2020), test on the full test set, and compare the precision of automatic
  answers with the target the thresholds were learnt for (cross-validation on so few examples
  is where over-confident thresholds show).
* ``off_topic``: the share of 60 general off-topic questions (data/benchmarks/offtopic, written
  by us, never trained on) the bundled FAQ model refuses, and why.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from classifier import IntentClassifier, Prediction, load_faq
from classifier.evaluate import evaluate
from classifier.train import handoff_intents

ROOT = Path(__file__).resolve().parents[1]
OFF_TOPIC = ROOT / "data" / "benchmarks" / "offtopic" / "questions.txt"
FAQ = ROOT / "data" / "faq"
SHOTS = (10, 30)
SHIFT_SEEDS = (0, 1, 2)
Say = Callable[[str], None]


def signal_auroc(
    clf: IntentClassifier, texts: list[str], unseen: np.ndarray, preds: Sequence[Prediction]
) -> dict[str, float]:
    """AUROC (known = positive) of each candidate signal for telling unseen intents apart."""
    known = ~unseen
    if known.all() or unseen.all():
        return {}
    scores = clf.decision_scores(texts) / clf.temperature_
    conf = np.asarray([p.confidence for p in preds])
    second = np.asarray([p.alternatives[0][1] if p.alternatives else 0.0 for p in preds])
    familiarity = np.asarray([p.familiarity or 0.0 for p in preds])
    answer = clf.rule_.score(conf, conf - second, familiarity)
    signals = {
        "confidence (softmax)": conf,
        "margin (top - second)": conf - second,
        "energy (log-sum-exp of logits)": logsumexp(scores, axis=1),
        "max logit": scores.max(axis=1),
        "familiarity (nearest-neighbour cosine)": familiarity,
        "answer score (confidence + margin + familiarity)": answer,
    }
    return {name: float(roc_auc_score(known, value)) for name, value in signals.items()}


def few_shot(
    backend: str,
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    say: Say,
    shots: Sequence[int] = SHOTS,
    seeds: Sequence[int] = SHIFT_SEEDS,
) -> list[dict[str, Any]]:
    """Train on ``n`` examples per intent, test on everything: does the precision hold?"""
    by_intent: dict[str, list[str]] = {}
    for text, label in zip(*train, strict=True):
        by_intent.setdefault(label, []).append(text)
    results = []
    for n in shots:
        for seed in seeds:
            rng = random.Random(seed)
            texts, labels = [], []
            for intent in sorted(by_intent):
                for text in rng.sample(by_intent[intent], min(n, len(by_intent[intent]))):
                    texts.append(text)
                    labels.append(intent)
            say(f"[{backend}] few-shot: {n} per intent, seed {seed} ({len(texts)} messages)")
            clf = IntentClassifier(backend).fit(texts, labels)
            report = evaluate(clf.predict(test[0]), test[1], set(clf.metadata_["intents"]))
            cv = clf.metadata_["cv"]
            results.append(
                {
                    "shots": n,
                    "seed": seed,
                    "n_train": len(texts),
                    "accuracy": report.accuracy,
                    "coverage": report.coverage,
                    "precision": report.precision,
                    "cv_coverage": cv.get("coverage"),
                    "cv_precision_known": cv.get("precision_known"),
                }
            )
    return results


def off_topic_questions() -> list[str]:
    lines = OFF_TOPIC.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def off_topic(backend: str, say: Say) -> dict[str, Any]:
    """The bundled FAQ model (trained on all of data/faq) on the off-topic questions."""
    say(f"[{backend}] off-topic questions against the FAQ model")
    faq = load_faq(FAQ)
    texts, labels = faq.training_data()
    clf = IntentClassifier(backend, handoff_intents=handoff_intents(faq)).fit(texts, labels)
    questions = off_topic_questions()
    preds = clf.predict(questions)
    answered = [
        (q, p.intent, p.confidence) for q, p in zip(questions, preds, strict=True) if p.intent
    ]
    return {
        "n": len(questions),
        "refused": 1 - len(answered) / max(len(questions), 1),
        "reasons": dict(Counter(p.reason for p in preds if p.intent is None)),
        "answered": answered,
    }
