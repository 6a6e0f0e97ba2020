"""``triagebot model ...``: train the bundled model, evaluate a model on labelled data.

Registered by the bot's CLI through :func:`add_model_parser`; defaults (model path, FAQ path,
backend) come from the caller so this package stays independent of the bot's settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ModelDefaults:
    model_path: Path
    faq_path: Path
    backend: str


def _progress(start: float) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"  [{time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say


def add_model_parser(
    subparsers: argparse._SubParsersAction, defaults: Callable[[], ModelDefaults]
) -> None:
    model = subparsers.add_parser("model", help="train or evaluate the intent model")
    sub = model.add_subparsers(dest="model_command", required=True)

    train = sub.add_parser("train", help="train the FAQ model and save it")
    train.add_argument("--backend", choices=["tfidf", "embeddings"])
    train.add_argument("--faq", type=Path, help="FAQ folder or YAML (default: settings)")
    train.add_argument("--data", type=Path, help="train on a labelled CSV instead of the FAQ")
    train.add_argument("--out", type=Path, help="where to save (default: settings MODEL_PATH)")
    train.add_argument(
        "--target-precision",
        type=float,
        default=0.95,
        help="precision over all automatic answers, wrong answers to unknown topics included",
    )
    train.add_argument(
        "--unknown-share",
        type=float,
        default=0.2,
        help="assumed share of messages about topics the FAQ does not know (default 0.2)",
    )
    train.set_defaults(func=lambda args: _train(args, defaults()))

    ev = sub.add_parser(
        "evaluate",
        help="accuracy, macro-F1, confusions, per-intent table and auto-answer curve",
        description="Evaluate on DATA (a CSV with text and label columns, or a FAQ YAML). "
        "By default the saved model is scored; --train fits a fresh model on another file "
        "first; --cv scores DATA by cross-validation (use it for the FAQ itself).",
    )
    ev.add_argument("data", type=Path)
    group = ev.add_mutually_exclusive_group()
    group.add_argument("--model", type=Path, help="saved model (default: settings MODEL_PATH)")
    group.add_argument("--train", type=Path, help="train on this labelled file first")
    group.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation on DATA")
    ev.add_argument("--backend", choices=["tfidf", "embeddings"])
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.set_defaults(func=lambda args: _evaluate(args, defaults()))


def _train(args: argparse.Namespace, defaults: ModelDefaults) -> int:
    from classifier.datasets import load_labelled
    from classifier.model import IntentClassifier
    from classifier.train import train_faq_model

    backend = args.backend or defaults.backend
    out = args.out or defaults.model_path
    start = time.perf_counter()
    say = _progress(start)
    if args.data:
        texts, labels = load_labelled(args.data)
        say(f"training {backend} on {len(texts)} examples from {args.data}")
        clf = IntentClassifier(
            backend, args.target_precision, oos_prior=args.unknown_share, progress=say
        ).fit(texts, labels)
        clf.save(out)
    else:
        faq = args.faq or defaults.faq_path
        say(f"training {backend} on the FAQ at {faq}")
        clf = train_faq_model(
            faq, out, backend, args.target_precision, progress=say, unknown_share=args.unknown_share
        )
    cv = clf.metadata_.get("cv", {})
    print(
        f"saved {out} ({len(clf.metadata_['intents'])} intents, "
        f"{clf.metadata_['n_examples']} examples, {time.perf_counter() - start:.1f}s)"
    )
    if "accuracy" in cv:
        print(
            f"cross-validated: accuracy {cv['accuracy']:.2%}, threshold {cv['threshold']:.3f} "
            f"-> answers {cv['coverage']:.2%} of messages at {cv['precision']:.2%} precision"
        )
    if cv.get("unknown_refused") is not None:
        print(
            f"intents it never saw (leave-intents-out): {cv['unknown_refused']:.2%} refused; "
            f"precision counts them at a {cv['oos_prior']:.0%} share of messages"
        )
    return 0


def _evaluate(args: argparse.Namespace, defaults: ModelDefaults) -> int:
    from sklearn.model_selection import StratifiedKFold

    from classifier.datasets import load_labelled
    from classifier.evaluate import evaluate
    from classifier.model import IntentClassifier, Prediction

    texts, labels = load_labelled(args.data)
    backend = args.backend or defaults.backend
    say = _progress(time.perf_counter())
    known: set[str] | None = None
    if args.cv:
        predictions: list[Prediction | None] = [None] * len(texts)
        y = np.asarray(labels)
        folds = StratifiedKFold(args.cv, shuffle=True, random_state=0)
        for i, (tr, te) in enumerate(folds.split(texts, y), start=1):
            say(f"fold {i}/{args.cv}")
            clf = IntentClassifier(backend).fit([texts[j] for j in tr], list(y[tr]))
            for j, p in zip(te, clf.predict([texts[j] for j in te]), strict=True):
                predictions[j] = p
        preds = [p for p in predictions if p is not None]
    else:
        if args.train:
            train_texts, train_labels = load_labelled(args.train)
            say(f"training {backend} on {len(train_texts)} examples")
            clf = IntentClassifier(backend, progress=say).fit(train_texts, train_labels)
        else:
            clf = IntentClassifier.load(args.model or defaults.model_path)
        known = set(clf.metadata_.get("intents", []))
        preds = clf.predict(texts)
    report = evaluate(preds, labels, known_intents=known)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    return 0
