"""Train the bundled FAQ model and tell whether a saved one is still current."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from classifier.faq import ANSWERED_CATEGORIES, Faq, load_faq
from classifier.model import (
    FORMAT_VERSION,
    IntentClassifier,
    Progress,
    _sklearn_series,
    data_hash,
)

HANDOFF_CATEGORIES = frozenset({"strategic", "human"})


def handoff_intents(faq: Faq) -> list[str]:
    """The FAQ's intents whose prediction hands the message to a person (never answered)."""
    return [name for name, spec in faq.intents.items() if spec.category in HANDOFF_CATEGORIES]


def faq_data_hash(faq_path: Path | str) -> str:
    texts, labels = load_faq(faq_path).training_data()
    return data_hash(texts, labels)


def train_faq_model(
    faq_path: Path | str,
    model_path: Path | str,
    backend: str = "tfidf",
    target_precision: float = 0.95,
    progress: Progress | None = None,
    unknown_share: float = 0.2,
    guard: Callable[[str], bool] | None = None,
) -> IntentClassifier:
    """Train on the FAQ's examples and save the model (atomically) to ``model_path``.

    The model's metadata keeps its safety figures from cross-validation (``faq_safety``):
    how many examples of ``strategic`` or ``human`` intents would have been auto-answered as
    an FAQ, and how many of those ``guard`` (the escalation policy's terms: True = a person
    gets it anyway) would still let through.
    """
    faq = load_faq(faq_path)
    texts, labels = faq.training_data()
    clf = IntentClassifier(
        backend=backend,
        target_precision=target_precision,
        oos_prior=unknown_share,
        handoff_intents=handoff_intents(faq),
        progress=progress,
    )
    clf.fit(texts, labels)
    clf.metadata_["faq"] = str(faq.source)
    clf.metadata_["faq_safety"] = faq_safety(faq, texts, labels, clf.out_of_fold_answers(), guard)
    clf.save(model_path)
    return clf


def model_is_current(faq_path: Path | str, model_path: Path | str, backend: str) -> str | None:
    """None when the saved model matches the FAQ, backend and library; else why it does not."""
    import sklearn

    model_path = Path(model_path)
    if not model_path.exists():
        return f"no model at {model_path}"
    meta = IntentClassifier.read_metadata(model_path)
    if not meta:
        return f"no metadata beside {model_path}"
    if meta.get("format") != FORMAT_VERSION:
        return f"model format {meta.get('format')} != {FORMAT_VERSION}"
    if _sklearn_series(str(meta.get("sklearn", ""))) != _sklearn_series(sklearn.__version__):
        return f"trained with scikit-learn {meta.get('sklearn')}, running {sklearn.__version__}"
    if meta.get("backend") != backend:
        return f"backend {meta.get('backend')} != {backend}"
    if meta.get("data_hash") != faq_data_hash(faq_path):
        return "the FAQ examples changed since training"
    return None


def faq_safety(
    faq: Faq,
    texts: list[str],
    labels: list[str],
    answers: list[str | None],
    guard: Callable[[str], bool] | None,
) -> dict[str, object]:
    """Strategic/human examples that cross-validation auto-answered, before and after ``guard``."""
    if not answers:
        return {}
    sensitive = {n for n, spec in faq.intents.items() if spec.category in ("strategic", "human")}
    leaks = [
        (text, label, answer)
        for text, label, answer in zip(texts, labels, answers, strict=True)
        if label in sensitive
        and answer is not None
        and faq.intents[answer].category in ANSWERED_CATEGORIES
    ]
    after = [leak for leak in leaks if guard is None or not guard(leak[0])]
    return {
        "sensitive_examples": sum(label in sensitive for label in labels),
        "auto_answered": len(leaks),
        "after_policy": len(after) if guard is not None else None,
        "examples": [f"{text} ({label} -> {answer})" for text, label, answer in after[:10]],
    }
