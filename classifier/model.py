"""``IntentClassifier``: a linear model over text features, calibrated, that knows when to abstain.

Training (``fit``):
1. k-fold cross-validation on the training data gives out-of-fold scores for every example;
2. a softmax temperature is fitted on them, so ``confidence`` reads as a probability of being
   right (of answers given at 0.9, about 90% are right);
3. the abstention threshold is the lowest confidence at which out-of-fold answers reach the
   target precision (default 0.95);
4. the final model is fitted on all the data.
No test data and no out-of-scope examples are needed; examples labelled ``out_of_scope`` are
learnt as a class whose prediction means "abstain".

Prediction (``predict_one``) uses a fast path: features and the linear scores are computed
directly from the fitted vocabularies and coefficients, without scikit-learn's per-call input
validation, which dominates the cost for a single short message.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from classifier.calibration import (
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    probabilities,
)
from classifier.features import HybridFeatures, TfidfFeatures

OUT_OF_SCOPE = "out_of_scope"
FORMAT_VERSION = 1
BACKENDS = ("tfidf", "embeddings")
Progress = Callable[[str], None]


class ModelIncompatibleError(RuntimeError):
    """A saved model cannot be used by this version of the code; retrain it."""


@dataclass(frozen=True)
class Prediction:
    intent: str | None
    """The intent to act on, or None: abstain (unsure, or out of scope)."""
    top_intent: str
    """The best guess, even when abstaining (may be ``out_of_scope``)."""
    confidence: float
    """Calibrated probability that ``top_intent`` is right (0..1)."""
    alternatives: tuple[tuple[str, float], ...] = ()
    """The next best guesses with their probabilities."""


def data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(label.encode())
        digest.update(b"\x1f")
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def _sklearn_series(version: str) -> str:
    return ".".join(version.split(".")[:2])


class IntentClassifier:
    """Intent classifier with calibrated confidence and a learnt abstention threshold."""

    def __init__(
        self,
        backend: str = "tfidf",
        target_precision: float = 0.95,
        *,
        C: float = 0.5,
        cv_folds: int = 5,
        random_state: int = 0,
        progress: Progress | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if not 0.0 < target_precision < 1.0:
            raise ValueError("target_precision must be between 0 and 1")
        self.backend = backend
        self.target_precision = target_precision
        self.C = C
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.progress = progress
        self.classes_: np.ndarray | None = None
        self.threshold_: float = 1.0
        self.temperature_: float = 1.0
        # out-of-fold (confidence, answerable, correct) arrays of the last fit; not saved
        self.cv_predictions_: tuple[Any, Any, Any] | None = None
        self.metadata_: dict[str, Any] = {}
        self._features: TfidfFeatures | HybridFeatures | None = None
        self._coef_t: np.ndarray | None = None  # (n_features, n_classes), float32
        self._intercept: np.ndarray | None = None
        self._oos_index: int = -1
        self._embed_cache: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ training
    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def _fit_once(self, texts: list[str], y: np.ndarray) -> tuple[TfidfFeatures, LinearSVC]:
        features = TfidfFeatures().fit(texts)
        model = LinearSVC(C=self.C, random_state=self.random_state)
        model.fit(features.transform(texts), y)
        return features, model

    @staticmethod
    def _scores(model: LinearSVC, x: Any, n_classes: int) -> np.ndarray:
        raw = np.asarray(model.decision_function(x), dtype=np.float64)
        if raw.ndim == 1:  # binary problem: one margin
            raw = np.column_stack([-raw, raw])
        full = np.full((raw.shape[0], n_classes), -1e3)
        full[:, model.classes_] = raw
        return full

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> IntentClassifier:
        texts = [str(t) for t in texts]
        labels = [str(label) for label in labels]
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        classes, y = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
        if len(classes) < 2:
            raise ValueError("need examples of at least 2 intents")
        started = time.perf_counter()
        self.classes_ = classes.astype(str)
        self._oos_index = (
            int(np.nonzero(self.classes_ == OUT_OF_SCOPE)[0][0])
            if (OUT_OF_SCOPE in self.classes_)
            else -1
        )
        n_classes = len(classes)
        min_count = int(np.bincount(y).min())
        folds = min(self.cv_folds, min_count)
        cv: dict[str, Any] = {"folds": folds}
        if folds >= 2:
            oof = np.zeros((len(texts), n_classes))
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            for i, (train_idx, val_idx) in enumerate(splitter.split(texts, y), start=1):
                self._say(f"cross-validation fold {i}/{folds}")
                tr = [texts[j] for j in train_idx]
                va = [texts[j] for j in val_idx]
                features, model = self._fit_once_cached(tr, y[train_idx])
                oof[val_idx] = self._scores(model, features.transform(va), n_classes)
            self.temperature_ = fit_temperature(oof, y)
            prob = probabilities(oof, self.temperature_)
            top = prob.argmax(axis=1)
            conf = prob.max(axis=1)
            correct = top == y
            answerable = top != self._oos_index
            self.threshold_ = choose_threshold(conf, answerable, correct, self.target_precision)
            # kept on the object (not saved) so a caller can weigh other precision targets
            self.cv_predictions_ = (conf, answerable, correct)
            answered = answerable & (conf >= self.threshold_)
            in_scope = y != self._oos_index
            cv.update(
                accuracy=float(correct[in_scope].mean()),
                macro_f1=_macro_f1(y, top, n_classes),
                threshold=self.threshold_,
                temperature=self.temperature_,
                coverage=float((answered & in_scope).sum() / max(in_scope.sum(), 1)),
                precision=float((answered & correct).sum() / max(answered.sum(), 1)),
                ece=expected_calibration_error(conf, correct),
            )
        else:
            self.threshold_ = 0.5
            cv["note"] = "too few examples per intent to cross-validate; threshold 0.5"
        self._say("fitting the final model")
        features, model = self._fit_once_cached(texts, y)
        if isinstance(features, HybridFeatures):
            features.clear_cache()
        self._embed_cache = None
        self._features = features
        coef = np.asarray(model.coef_, dtype=np.float32)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            coef = np.vstack([-coef, coef])
            intercept = np.concatenate([-intercept, intercept])
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept
        self.metadata_ = {
            "format": FORMAT_VERSION,
            "backend": self.backend,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "train_seconds": round(time.perf_counter() - started, 2),
            "n_examples": len(texts),
            "intents": [str(c) for c in self.classes_],
            "data_hash": data_hash(texts, labels),
            "target_precision": self.target_precision,
            "threshold": self.threshold_,
            "temperature": self.temperature_,
            "cv": cv,
        }
        return self

    def _fit_once_cached(
        self, texts: list[str], y: np.ndarray
    ) -> tuple[TfidfFeatures | HybridFeatures, LinearSVC]:
        """Like ``_fit_once`` but shares sentence embeddings between folds."""
        if self.backend == "tfidf":
            return self._fit_once(texts, y)
        features = HybridFeatures()
        if self._embed_cache is not None:
            features._cache = self._embed_cache
        features.fit(texts)
        x = features.transform(texts, self.progress)
        self._embed_cache = features._cache
        model = LinearSVC(C=self.C, random_state=self.random_state).fit(x, y)
        return features, model

    # ---------------------------------------------------------------- prediction
    def _check_fitted(self) -> None:
        if self._features is None or self._coef_t is None or self.classes_ is None:
            raise RuntimeError("IntentClassifier is not fitted")

    def _prediction(self, scores: np.ndarray) -> Prediction:
        assert self.classes_ is not None
        z = scores / self.temperature_
        z = np.exp(z - z.max())
        prob = z / z.sum()
        order = np.argsort(-prob)[:4]
        best = int(order[0])
        confidence = float(prob[best])
        top = str(self.classes_[best])
        answer = best != self._oos_index and confidence >= self.threshold_
        return Prediction(
            intent=top if answer else None,
            top_intent=top,
            confidence=confidence,
            alternatives=tuple((str(self.classes_[i]), float(prob[i])) for i in order[1:]),
        )

    def predict_one(self, text: str) -> Prediction:
        """One message, on the fast path (no scikit-learn validation overhead)."""
        self._check_fitted()
        assert self._coef_t is not None and self._intercept is not None
        text = str(text)
        if isinstance(self._features, HybridFeatures):
            idx, val, emb = self._features.transform_one(text)
            n_tfidf = self._features.tfidf.n_features
            scores = self._intercept + val @ self._coef_t[idx] + emb @ self._coef_t[n_tfidf:]
        else:
            assert self._features is not None
            idx, val = self._features.transform_one(text)
            scores = self._intercept + val @ self._coef_t[idx]
        return self._prediction(np.asarray(scores, dtype=np.float64))

    def decision_scores(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        assert self._features is not None and self._coef_t is not None
        x = self._features.transform([str(t) for t in texts])
        return np.asarray(x @ self._coef_t, dtype=np.float64) + self._intercept

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """A batch of messages (vectorised)."""
        if len(texts) == 0:
            return []
        scores = self.decision_scores(texts)
        return [self._prediction(row) for row in scores]

    # ------------------------------------------------------------- persistence
    def save(self, path: Path | str) -> Path:
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": FORMAT_VERSION,
            "sklearn": sklearn.__version__,
            "metadata": self.metadata_,
            "params": {
                "backend": self.backend,
                "target_precision": self.target_precision,
                "C": self.C,
                "cv_folds": self.cv_folds,
                "random_state": self.random_state,
            },
            "classes": self.classes_,
            "threshold": self.threshold_,
            "temperature": self.temperature_,
            "features": self._features,
            "coef_t": self._coef_t,
            "intercept": self._intercept,
            "oos_index": self._oos_index,
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        joblib.dump(state, tmp, compress=3)
        tmp.replace(path)  # atomic: a running server never loads a half-written file
        path.with_suffix(".json").write_text(json.dumps(self.metadata_, indent=2) + "\n")
        return path

    @classmethod
    def read_metadata(cls, path: Path | str) -> dict[str, Any]:
        """The metadata written beside a model, without loading it (empty if absent)."""
        side = Path(path).with_suffix(".json")
        try:
            return dict(json.loads(side.read_text()))
        except (OSError, ValueError):
            return {}

    @classmethod
    def load(cls, path: Path | str) -> IntentClassifier:
        """Load a model saved by :meth:`save`. Only load files you trust (pickle format)."""
        path = Path(path)
        meta = cls.read_metadata(path)
        if meta:
            cls._check_versions(path, meta.get("format"), str(meta.get("sklearn", "")))
        try:
            state = joblib.load(path)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ModelIncompatibleError(
                f"cannot read the model at {path} ({type(exc).__name__}: {exc}); "
                "retrain it with 'triagebot model train'"
            ) from exc
        if not isinstance(state, dict) or "format" not in state:
            raise ModelIncompatibleError(f"{path} is not a triagebot model")
        cls._check_versions(path, state["format"], state["sklearn"])
        clf = cls(**state["params"])
        clf.classes_ = state["classes"]
        clf.threshold_ = state["threshold"]
        clf.temperature_ = state["temperature"]
        clf._features = state["features"]
        clf._coef_t = state["coef_t"]
        clf._intercept = state["intercept"]
        clf._oos_index = state["oos_index"]
        clf.metadata_ = state["metadata"]
        return clf

    @staticmethod
    def _check_versions(path: Path, fmt: Any, sk_version: str) -> None:
        if fmt != FORMAT_VERSION:
            raise ModelIncompatibleError(
                f"the model at {path} has format {fmt}, this triagebot reads format "
                f"{FORMAT_VERSION}: retrain it with 'triagebot model train'"
            )
        if _sklearn_series(sk_version) != _sklearn_series(sklearn.__version__):
            raise ModelIncompatibleError(
                f"the model at {path} was trained with scikit-learn {sk_version}, this is "
                f"{sklearn.__version__}: retrain it with 'triagebot model train'"
            )


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=np.arange(n_classes), average="macro", zero_division=0))
