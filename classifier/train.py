"""Train the bundled FAQ model and tell whether a saved one is still current."""

from __future__ import annotations

from pathlib import Path

from classifier.faq import load_faq
from classifier.model import (
    FORMAT_VERSION,
    IntentClassifier,
    Progress,
    _sklearn_series,
    data_hash,
)


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
) -> IntentClassifier:
    """Train on the FAQ's examples and save the model (atomically) to ``model_path``."""
    faq = load_faq(faq_path)
    texts, labels = faq.training_data()
    clf = IntentClassifier(
        backend=backend,
        target_precision=target_precision,
        oos_prior=unknown_share,
        progress=progress,
    )
    clf.fit(texts, labels)
    clf.metadata_["faq"] = str(faq.source)
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
