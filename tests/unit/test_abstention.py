"""Open-set rejection: familiarity, the answer rule learnt by leave-intents-out, and the
reasons a prediction abstains (unknown_topic, ambiguous, low_confidence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from classifier import (
    AMBIGUOUS,
    LOW_CONFIDENCE,
    OUT_OF_SCOPE,
    UNKNOWN_TOPIC,
    IntentClassifier,
    load_faq,
)
from classifier.features import TfidfFeatures
from classifier.novelty import DenseNeighbours, SparseNeighbours
from classifier.rejection import RejectionData, weighted_threshold
from tests.conftest import ROOT

FAQ = ROOT / "data" / "faq"

SUBSET = (
    "password_reset",
    "invoice_request",
    "two_factor_auth",
    "data_export",
    "login_problem",
    "add_users_seats",
    "change_payment_method",
    "out_of_scope",
)


def _data(with_out_of_scope: bool = False) -> tuple[list[str], list[str]]:
    """Eight real FAQ intents (our own examples), without the out_of_scope class by default."""
    texts, labels = load_faq(FAQ).training_data()
    keep = [k for k in SUBSET if with_out_of_scope or k != OUT_OF_SCOPE]
    pairs = [(t, label) for t, label in zip(texts, labels, strict=True) if label in keep]
    return [t for t, _ in pairs], [label for _, label in pairs]


@pytest.fixture(scope="module")
def toy() -> IntentClassifier:
    return IntentClassifier(cv_folds=4).fit(*_data())


@pytest.fixture(scope="module")
def faq_model(model_path: Path) -> IntentClassifier:
    return IntentClassifier.load(model_path)


def test_a_message_like_the_training_data_is_answered_without_a_reason(
    toy: IntentClassifier,
) -> None:
    prediction = toy.predict_one("hi, i forgot my password and can't get in")
    assert prediction.intent == "password_reset"
    assert prediction.reason is None


def test_a_message_between_two_intents_is_ambiguous(faq_model: IntentClassifier) -> None:
    prediction = faq_model.predict_one("export invoices")
    assert prediction.intent is None
    assert prediction.reason == AMBIGUOUS
    top_two = {prediction.top_intent, prediction.alternatives[0][0]}
    assert top_two == {"data_export", "invoice_request"}


def test_reason_rules_on_chosen_scores(toy: IntentClassifier) -> None:
    """The decision on given logits and familiarity: unfamiliar, two close intents, weak."""
    classes = list(toy.classes_ if toy.classes_ is not None else [])
    t = toy.temperature_

    def logits(**probs: float) -> np.ndarray:
        rest = (1 - sum(probs.values())) / (len(classes) - len(probs))
        p = np.array([probs.get(c, rest) for c in classes])
        return np.log(p) * t

    sure = logits(password_reset=0.999)
    assert toy._prediction(sure, familiarity=0.95).intent == "password_reset"
    assert toy._prediction(sure, familiarity=0.0).reason == UNKNOWN_TOPIC
    two = logits(password_reset=0.55, two_factor_auth=0.43)
    assert toy._prediction(two, familiarity=0.95).reason == AMBIGUOUS
    weak = logits(password_reset=0.4, two_factor_auth=0.05)
    assert toy._prediction(weak, familiarity=0.95).reason == LOW_CONFIDENCE


def test_the_answer_score_rises_with_confidence_and_familiarity(toy: IntentClassifier) -> None:
    rule = toy.rule_
    assert rule.score_one(0.5, 0.0, 0.5) < rule.threshold_ <= rule.score_one(0.999, 0.99, 0.95)
    assert rule.score_one(0.9, 0.8, 0.3) < rule.score_one(0.9, 0.8, 0.9)


def test_familiarity_is_higher_for_known_phrasings(toy: IntentClassifier) -> None:
    known, unknown = toy.familiarity(["where can i download my invoice", "banana bread recipe"])
    assert known > unknown + 0.3


def test_out_of_scope_examples_are_not_familiar() -> None:
    clf = IntentClassifier(cv_folds=4).fit(*_data(with_out_of_scope=True))
    texts, labels = _data(with_out_of_scope=True)
    off_topic = [t for t, label in zip(texts, labels, strict=True) if label == OUT_OF_SCOPE]
    prediction = clf.predict_one(off_topic[0])
    assert prediction.intent is None
    assert prediction.reason == UNKNOWN_TOPIC
    # the index holds in-scope examples only: an out_of_scope example is not "known"
    assert clf.familiarity(off_topic[:1])[0] < 0.99


def test_fit_simulates_unknown_intents_and_reports_their_refusal(toy: IntentClassifier) -> None:
    cv = toy.metadata_["cv"]
    assert cv["unknown_rows"] == len(_data()[0])
    assert cv["unknown_refused"] is not None and cv["unknown_refused"] > 0.5
    # precision over all answers, wrong answers to never-seen intents included
    assert cv["precision"] >= toy.target_precision


def test_bundled_faq_model_refuses_off_topic_questions_as_unknown_topic(
    faq_model: IntentClassifier,
) -> None:
    for text in ["how tall is the eiffel tower", "recommend a good pizza place in rome"]:
        prediction = faq_model.predict_one(text)
        assert prediction.intent is None, text
        assert prediction.reason == UNKNOWN_TOPIC, text


def test_reasons_survive_save_and_load(toy: IntentClassifier, tmp_path: Path) -> None:
    again = IntentClassifier.load(toy.save(tmp_path / "toy.joblib"))
    for text in ["what is the capital of mongolia", "export invoices", "reset", "2fa"]:
        assert again.predict_one(text) == toy.predict_one(text)


def test_sparse_neighbours_fast_path_equals_batch() -> None:
    texts = ["reset my password", "download my invoice", "export the report as csv"]
    features = TfidfFeatures().fit(texts)
    index = SparseNeighbours(features.transform(texts), blocks=2)
    queries = ["reset my card", "export invoice", "zzz", "", "i moved my password"]
    batch = index.nearest(features.transform(queries))
    for query, expected in zip(queries, batch, strict=True):
        idx, val = features.transform_one(query)
        assert index.nearest_one(idx, val) == pytest.approx(expected, abs=1e-5), query
    assert index.nearest(features.transform(["reset my password"]))[0] == pytest.approx(1.0)


def test_sparse_neighbours_leave_out_features_most_rows_share() -> None:
    texts = [f"reset my password number {i}" for i in range(150)] + [
        f"download invoice {i}" for i in range(150)
    ]
    features = TfidfFeatures().fit(texts)
    pruned = SparseNeighbours(features.transform(texts), blocks=2, max_df=0.1)
    kept = SparseNeighbours(features.transform(texts), blocks=2, max_df=1.0)
    query = features.transform(["my number"])  # only words and n-grams every row has
    assert kept.nearest(query)[0] > 0.1
    assert pruned.nearest(query)[0] < kept.nearest(query)[0] / 2


def test_dense_neighbours_is_cosine_to_the_nearest_row() -> None:
    index = DenseNeighbours(np.array([[1.0, 0.0], [0.0, 2.0]]))
    assert index.nearest(np.array([[3.0, 0.0], [1.0, 1.0]])) == pytest.approx([1.0, 0.7071], 1e-3)
    assert index.nearest_one(np.array([0.0, -1.0])) == pytest.approx(0.0)
    assert DenseNeighbours(np.zeros((0, 2))).nearest_one(np.ones(2)) == 0.0
    assert SparseNeighbours(sp.csr_matrix((0, 3))).nearest_one(np.array([1]), np.ones(1)) == 0.0


def test_weighted_threshold_counts_unknown_intent_answers_as_wrong() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.6])
    answerable = np.ones(4, dtype=bool)
    correct = np.array([True, False, True, True])
    # unweighted: precision 1, .5, .67, .75 -> 0.7 target keeps all four
    ones = np.ones(4)
    assert weighted_threshold(score, answerable, correct, ones, 0.7, min_answers=1) == 0.6
    # the wrong answer weighs 3 (an unknown intent, weighted to its prior): only the first
    heavy = np.array([1.0, 3.0, 1.0, 1.0])
    assert weighted_threshold(score, answerable, correct, heavy, 0.7, min_answers=1) == 0.9


def test_rejection_weights_give_unknown_rows_their_prior_share() -> None:
    n_known, n_unknown = 30, 10
    data = RejectionData(
        *(np.zeros(n_known + n_unknown) for _ in range(4)),
        answerable=np.ones(n_known + n_unknown, dtype=bool),
        correct=np.zeros(n_known + n_unknown, dtype=bool),
        unknown=np.arange(n_known + n_unknown) >= n_known,
    )
    w = data.weights(0.2)
    assert w[data.unknown].sum() / w.sum() == pytest.approx(0.2)


def test_predicting_a_handoff_intent_is_not_an_automatic_answer() -> None:
    texts, labels = _data()
    clf = IntentClassifier(cv_folds=4, handoff_intents=["login_problem"]).fit(texts, labels)
    data, top = clf.rejection_data_, clf.oof_top_
    assert data is not None and top is not None and clf.classes_ is not None
    login = list(clf.classes_).index("login_problem")
    known = ~data.unknown
    # out-of-fold predictions of the handoff intent are neither answers nor errors
    assert not data.answerable[known][top == login].any()
    assert data.answerable[known][top != login].all()
    assert clf.metadata_["cv"]["coverage"] > 0.5
