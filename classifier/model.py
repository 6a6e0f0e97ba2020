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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from classifier.calibration import (
    expected_calibration_error,
    fit_temperature,
    probabilities,
)
from classifier.features import HybridFeatures, TfidfFeatures
from classifier.novelty import DenseNeighbours, SparseNeighbours
from classifier.rejection import (
    AMBIGUOUS_SECOND,
    AMBIGUOUS_TOP_TWO,
    AnswerRule,
    RejectionData,
    coverage_precision,
)

OUT_OF_SCOPE = "out_of_scope"
# Why a prediction abstained (``Prediction.reason``).
UNKNOWN_TOPIC = "unknown_topic"
"""The message is unlike anything trained on (or an explicit out-of-scope example)."""
AMBIGUOUS = "ambiguous"
"""Two or more intents are close: asking "did you mean ...?" can resolve it."""
LOW_CONFIDENCE = "low_confidence"
"""A known topic, but the model is not sure enough of the intent."""
ABSTAIN_REASONS = (UNKNOWN_TOPIC, AMBIGUOUS, LOW_CONFIDENCE)
FORMAT_VERSION = 2
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
    reason: str | None = None
    """Why it abstained (one of ``ABSTAIN_REASONS``), None when ``intent`` is set."""
    familiarity: float | None = None
    """How close the message is to the training examples (cosine similarity of the nearest
    ones, 0..1; low means an unfamiliar topic). None for models without a novelty score."""


@dataclass
class _Rows(RejectionData):
    """Rejection rows plus the index of the top intent (for macro-F1)."""

    top: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


def _rows(
    prob: np.ndarray,
    familiarity: np.ndarray,
    y: np.ndarray,
    not_answers: np.ndarray,
    unknown: bool,
) -> _Rows:
    """``not_answers``: class indices whose prediction is never an automatic answer
    (``out_of_scope`` and the handoff intents)."""
    n = len(prob)
    if n == 0:
        empty = np.zeros(0)
        no = np.zeros(0, dtype=bool)
        return _Rows(empty, empty, empty, empty, no, no, no, np.zeros(0, dtype=int))
    ranked = np.sort(prob, axis=1)[:, ::-1]
    second = ranked[:, 1] if prob.shape[1] > 1 else np.zeros(n)
    top = prob.argmax(axis=1)
    return _Rows(
        conf=ranked[:, 0],
        margin=ranked[:, 0] - second,
        second=second,
        familiarity=np.asarray(familiarity, dtype=np.float64),
        answerable=~np.isin(top, not_answers),
        correct=(top == y) & (not unknown),
        unknown=np.full(n, unknown),
        top=top,
    )


def _concat(a: RejectionData, b: RejectionData) -> RejectionData:
    def both(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name), getattr(b, name)])

    return RejectionData(
        conf=both("conf"),
        margin=both("margin"),
        second=both("second"),
        familiarity=both("familiarity"),
        answerable=both("answerable"),
        correct=both("correct"),
        unknown=both("unknown"),
    )


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
    """Intent classifier with calibrated confidence and a learnt answer rule.

    ``handoff_intents``: intents whose prediction sends the message to a person anyway
    (strategic or "talk to a human" intents). Predicting one is not an automatic answer, so
    those predictions neither count as answers nor as errors when the answer rule is learnt;
    every other intent's prediction is an automatic answer and must meet the precision target.
    """

    def __init__(
        self,
        backend: str = "tfidf",
        target_precision: float = 0.95,
        *,
        C: float = 0.5,
        cv_folds: int = 5,
        lio_groups: int = 4,
        oos_prior: float = 0.2,
        handoff_intents: Sequence[str] = (),
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
        self.lio_groups = lio_groups
        self.oos_prior = oos_prior
        self.handoff_intents = tuple(handoff_intents)
        self.random_state = random_state
        self.progress = progress
        self.classes_: np.ndarray | None = None
        self.threshold_: float = 1.0
        self.temperature_: float = 1.0
        self.rule_ = AnswerRule()
        # out-of-fold rows (known and simulated unknown intents) of the last fit; not saved
        self.rejection_data_: RejectionData | None = None
        self.oof_top_: np.ndarray | None = None  # out-of-fold top intent of each example
        self._neighbours: DenseNeighbours | SparseNeighbours | None = None
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
        # class balancing: +0.26 points on BANKING77 for tf-idf; none for the hybrid features
        # (-0.13), so only here (docs/benchmarks.md)
        model = LinearSVC(C=self.C, random_state=self.random_state, class_weight="balanced")
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
        self.rule_ = AnswerRule()
        if folds >= 2:
            oof, familiarity = self._cross_validate(texts, y, folds)
            self.temperature_ = fit_temperature(oof, y)
            known = self._known_rows(texts, y, oof, familiarity)
            unknown = self._leave_intents_out(texts, y)
            data = _concat(known, unknown)
            self.rule_.fit(data, self.target_precision, self.oos_prior)
            self.threshold_ = self.rule_.threshold_
            # kept on the object (not saved) so a caller can weigh other precision targets
            self.rejection_data_ = data
            self.oof_top_ = known.top
            answered = self._answered(data)
            # coverage: of the messages whose intent the bot answers itself (not out_of_scope,
            # not a handoff intent), the share it answered
            in_scope = np.concatenate(
                [~np.isin(y, self._not_answers()), np.zeros(len(unknown.conf), bool)]
            )
            _, precision, refusal = coverage_precision(answered, data, self.oos_prior)
            top_correct = known.correct
            cv.update(
                accuracy=float(top_correct[y != self._oos_index].mean()),
                macro_f1=_macro_f1(y, known.top, n_classes),
                threshold=self.threshold_,
                temperature=self.temperature_,
                coverage=float((answered & in_scope).sum() / max(in_scope.sum(), 1)),
                precision=precision,
                precision_known=float(
                    (answered & data.correct & ~data.unknown).sum()
                    / max((answered & ~data.unknown).sum(), 1)
                ),
                unknown_refused=refusal if len(unknown.conf) else None,
                unknown_rows=len(unknown.conf),
                oos_prior=self.oos_prior,
                ece=expected_calibration_error(known.conf, known.correct),
            )
        else:
            self.threshold_ = 0.5
            self.rule_.threshold_ = 0.5
            self.rule_.coef_ = np.array([1.0, 0.0, 0.0])
            cv["note"] = "too few examples per intent to cross-validate; threshold 0.5"
        self._say("fitting the final model")
        features, model = self._fit_once_cached(texts, y)
        self._neighbours = self._familiarity_index(features, texts, y != self._oos_index)
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
            "answer_rule": {
                "coef": [float(c) for c in self.rule_.coef_],
                "intercept": self.rule_.intercept_,
                "unfamiliar_below": self.rule_.unfamiliar_,
            },
            "cv": cv,
        }
        return self

    # The pieces of ``fit``: out-of-fold scores and familiarity for known and unknown intents.
    def _cross_validate(
        self, texts: list[str], y: np.ndarray, folds: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n_classes = len(self.classes_ if self.classes_ is not None else [])
        oof = np.zeros((len(texts), n_classes))
        familiarity = np.zeros(len(texts))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        in_scope = y != self._oos_index
        for i, (train_idx, val_idx) in enumerate(splitter.split(texts, y), start=1):
            self._say(f"cross-validation fold {i}/{folds}")
            tr = [texts[j] for j in train_idx]
            va = [texts[j] for j in val_idx]
            features, model = self._fit_once_cached(tr, y[train_idx])
            oof[val_idx] = self._scores(model, features.transform(va), n_classes)
            index = self._familiarity_index(features, tr, in_scope[train_idx])
            familiarity[val_idx] = self._familiarity(index, features, va)
        return oof, familiarity

    def _known_rows(
        self, texts: list[str], y: np.ndarray, oof: np.ndarray, familiarity: np.ndarray
    ) -> _Rows:
        prob = probabilities(oof, self.temperature_)
        return _rows(prob, familiarity, y, self._not_answers(), unknown=False)

    def _leave_intents_out(self, texts: list[str], y: np.ndarray) -> _Rows:
        """Score every intent's examples with a model trained without that intent."""
        n_classes = len(self.classes_ if self.classes_ is not None else [])
        intents = [c for c in range(n_classes) if c != self._oos_index]
        groups = min(self.lio_groups, len(intents))
        if groups < 2 or len(intents) < 4:
            return _rows(np.zeros((0, n_classes)), np.zeros(0), np.zeros(0, int), np.zeros(0), True)
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(intents)
        probs, fams, ys = [], [], []
        for g, held in enumerate(np.array_split(order, groups), start=1):
            self._say(f"leave-intents-out fold {g}/{groups}")
            held_mask = np.isin(y, held)
            train_idx = np.nonzero(~held_mask)[0]
            test_idx = np.nonzero(held_mask)[0]
            tr = [texts[j] for j in train_idx]
            te = [texts[j] for j in test_idx]
            features, model = self._fit_once_cached(tr, y[train_idx])
            scores = self._scores(model, features.transform(te), n_classes)
            scores[:, held] = -1e3  # the model knows nothing of them
            probs.append(probabilities(scores, self.temperature_))
            index = self._familiarity_index(features, tr, y[train_idx] != self._oos_index)
            fams.append(self._familiarity(index, features, te))
            ys.append(y[test_idx])
        return _rows(
            np.vstack(probs), np.concatenate(fams), np.concatenate(ys), self._not_answers(), True
        )

    def _not_answers(self) -> np.ndarray:
        """Class indices whose prediction never auto-answers: out_of_scope, handoff intents."""
        classes = list(self.classes_ if self.classes_ is not None else [])
        names = {OUT_OF_SCOPE, *self.handoff_intents}
        return np.asarray([i for i, c in enumerate(classes) if c in names], dtype=int)

    def _answered(self, data: RejectionData) -> np.ndarray:
        return self.rule_.answers(data)

    def out_of_fold_answers(self) -> list[str | None]:
        """Per training example (in order): the intent cross-validation answered, or None."""
        data, top = self.rejection_data_, self.oof_top_
        if data is None or top is None or self.classes_ is None:
            return []
        answered = self.rule_.answers(data)[: len(top)]
        return [str(self.classes_[t]) if a else None for t, a in zip(top, answered, strict=True)]

    def _familiarity_index(
        self, features: TfidfFeatures | HybridFeatures, texts: list[str], keep: np.ndarray
    ) -> DenseNeighbours | SparseNeighbours:
        """Nearest-neighbour index over the in-scope training examples."""
        kept = [t for t, k in zip(texts, keep, strict=True) if k]
        if isinstance(features, HybridFeatures):
            vectors = features.embed(kept) if kept else np.zeros((0, features.n_features))
            return DenseNeighbours(vectors)
        return SparseNeighbours(features.transform(kept), blocks=len(features.vectorizers))

    @staticmethod
    def _familiarity(
        index: DenseNeighbours | SparseNeighbours,
        features: TfidfFeatures | HybridFeatures,
        texts: list[str],
    ) -> np.ndarray:
        if isinstance(index, DenseNeighbours) and isinstance(features, HybridFeatures):
            return index.nearest(features.embed(texts))
        if isinstance(index, SparseNeighbours) and isinstance(features, TfidfFeatures):
            return index.nearest(features.transform(texts))
        raise TypeError("familiarity index does not match the features")

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

    def _prediction(self, scores: np.ndarray, familiarity: float) -> Prediction:
        if self.classes_ is None:
            raise RuntimeError("IntentClassifier is not fitted")
        z = scores / self.temperature_
        z = np.exp(z - z.max())
        prob = z / z.sum()
        order = np.argsort(-prob)[:4]
        best = int(order[0])
        p = [float(prob[i]) for i in order] + [0.0, 0.0]
        confidence = p[0]
        top = str(self.classes_[best])
        rule = self.rule_
        answer = (
            best != self._oos_index
            and familiarity >= rule.unfamiliar_
            and rule.score_one(confidence, p[0] - p[1], familiarity) >= rule.threshold_
        )
        reason = None
        if not answer:
            if best == self._oos_index or familiarity < rule.unfamiliar_:
                reason = UNKNOWN_TOPIC
            elif (
                len(order) > 1
                and int(order[1]) != self._oos_index
                and p[1] >= AMBIGUOUS_SECOND
                and p[0] + p[1] >= AMBIGUOUS_TOP_TWO
            ):
                reason = AMBIGUOUS
            else:
                reason = LOW_CONFIDENCE
        return Prediction(
            intent=top if answer else None,
            top_intent=top,
            confidence=confidence,
            alternatives=tuple((str(self.classes_[i]), float(prob[i])) for i in order[1:]),
            reason=reason,
            familiarity=familiarity,
        )

    def predict_one(self, text: str) -> Prediction:
        """One message, on the fast path (no scikit-learn validation overhead)."""
        self._check_fitted()
        features, coef_t, intercept = self._features, self._coef_t, self._intercept
        if coef_t is None or intercept is None or features is None:
            raise RuntimeError("IntentClassifier is not fitted")
        text = str(text)
        familiarity = 1.0
        if isinstance(features, HybridFeatures):
            idx, val, emb = features.transform_one(text)
            n_tfidf = features.tfidf.n_features
            scores = intercept + val @ coef_t[idx] + emb @ coef_t[n_tfidf:]
            if isinstance(self._neighbours, DenseNeighbours):
                familiarity = self._neighbours.nearest_one(emb)
        else:
            idx, val = features.transform_one(text)
            scores = intercept + val @ coef_t[idx]
            if isinstance(self._neighbours, SparseNeighbours):
                familiarity = self._neighbours.nearest_one(idx, val)
        return self._prediction(np.asarray(scores, dtype=np.float64), familiarity)

    def decision_scores(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if self._features is None or self._coef_t is None or self._intercept is None:
            raise RuntimeError("IntentClassifier is not fitted")
        x = self._features.transform([str(t) for t in texts])
        return np.asarray(x @ self._coef_t, dtype=np.float64) + self._intercept

    def familiarity(self, texts: Sequence[str]) -> np.ndarray:
        """Nearest-training-example similarity of each text (``Prediction.familiarity``)."""
        self._check_fitted()
        if self._neighbours is None or self._features is None:
            return np.ones(len(texts))
        return self._familiarity(self._neighbours, self._features, [str(t) for t in texts])

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """A batch of messages (vectorised)."""
        if len(texts) == 0:
            return []
        scores = self.decision_scores(texts)
        familiarity = self.familiarity(texts)
        return [self._prediction(row, float(f)) for row, f in zip(scores, familiarity, strict=True)]

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
                "lio_groups": self.lio_groups,
                "oos_prior": self.oos_prior,
                "handoff_intents": list(self.handoff_intents),
                "random_state": self.random_state,
            },
            "classes": self.classes_,
            "threshold": self.threshold_,
            "temperature": self.temperature_,
            "features": self._features,
            "coef_t": self._coef_t,
            "intercept": self._intercept,
            "oos_index": self._oos_index,
            "rule": self.rule_,
            "neighbours": self._neighbours,
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
        clf.rule_ = state["rule"]
        clf._neighbours = state["neighbours"]
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
