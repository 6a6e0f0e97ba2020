"""The intent classifier: API, abstention, fast path, persistence, version checks."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest

from classifier import (
    OUT_OF_SCOPE,
    IntentClassifier,
    ModelIncompatibleError,
    Prediction,
    load_faq,
)
from classifier.calibration import choose_threshold, fit_temperature
from classifier.rejection import weighted_threshold
from tests.conftest import ROOT

FAQ = ROOT / "data" / "faq"


@pytest.fixture(scope="module")
def clf(model_path: Path) -> IntentClassifier:
    return IntentClassifier.load(model_path)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I forgot my password", "password_reset"),
        ("how do I download last month's invoice", "invoice_request"),
        ("I want to cancel our subscription", "cancel_subscription"),
        ("can I talk to a real person please", "talk_to_human"),
    ],
)
def test_bundled_model_recognises_core_intents(
    clf: IntentClassifier, text: str, intent: str
) -> None:
    prediction = clf.predict_one(text)
    assert prediction.top_intent == intent
    assert 0.0 <= prediction.confidence <= 1.0


@pytest.mark.parametrize(
    "text", ["what's the weather like in Lisbon tomorrow", "asdkjh qwpoe zzxq", ""]
)
def test_abstains_on_out_of_scope_and_gibberish(clf: IntentClassifier, text: str) -> None:
    prediction = clf.predict_one(text)
    assert prediction.intent is None
    assert isinstance(prediction.top_intent, str)


def test_fast_path_matches_batch_path(clf: IntentClassifier) -> None:
    texts, _ = load_faq(FAQ).training_data()
    sample = [*texts[::37], "🙂🙂", "ÉXPORT  données!!", "x" * 5000, "\u202e reversed"]
    batch = clf.predict(sample)
    for text, b in zip(sample, batch, strict=True):
        one = clf.predict_one(text)
        assert one.top_intent == b.top_intent, text
        assert one.intent == b.intent, text
        assert one.confidence == pytest.approx(b.confidence, abs=1e-4), text
        assert one.reason == b.reason, text
        assert one.familiarity == pytest.approx(b.familiarity, abs=1e-4), text


def test_threshold_is_learnt_from_training_data(clf: IntentClassifier) -> None:
    cv = clf.metadata_["cv"]
    assert 0.0 < clf.threshold_ < 1.0
    assert cv["threshold"] == clf.threshold_
    # the cross-validated answers meet the requested precision (the rule that picked it)
    assert cv["precision"] >= clf.target_precision
    assert clf.metadata_["data_hash"] and clf.metadata_["sklearn"]


def test_save_load_round_trip(clf: IntentClassifier, tmp_path: Path) -> None:
    path = clf.save(tmp_path / "m.joblib")
    again = IntentClassifier.load(path)
    for text in ["reset my password", "invoice", "hello"]:
        assert again.predict_one(text) == clf.predict_one(text)


def test_refuses_model_from_another_format(clf: IntentClassifier, tmp_path: Path) -> None:
    path = clf.save(tmp_path / "m.joblib")
    state = joblib.load(path)
    state["format"] = 999
    joblib.dump(state, path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelIncompatibleError, match="format 999"):
        IntentClassifier.load(path)


def test_refuses_model_from_another_sklearn_series(clf: IntentClassifier, tmp_path: Path) -> None:
    path = clf.save(tmp_path / "m.joblib")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["sklearn"] = "0.1.0"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelIncompatibleError, match=r"scikit-learn 0\.1\.0.*retrain"):
        IntentClassifier.load(path)


def test_corrupt_model_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelIncompatibleError, match="retrain"):
        IntentClassifier.load(path)


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        IntentClassifier().fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="at least 2 intents"):
        IntentClassifier().fit(["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="backend"):
        IntentClassifier(backend="bert")


def test_out_of_scope_label_means_abstain() -> None:
    texts = (
        [f"reset my password {i}" for i in range(12)]
        + [f"weather forecast city {i}" for i in range(12)]
        + [f"download invoice number {i}" for i in range(12)]
    )
    labels = ["password_reset"] * 12 + [OUT_OF_SCOPE] * 12 + ["invoice_request"] * 12
    clf = IntentClassifier(cv_folds=3).fit(texts, labels)
    prediction = clf.predict_one("weather forecast city")
    assert prediction.top_intent == OUT_OF_SCOPE
    assert prediction.intent is None
    assert isinstance(clf.predict(["reset my password"])[0], Prediction)


def test_fit_keeps_its_out_of_fold_rows_for_other_precision_targets() -> None:
    texts = (
        [f"reset my password please {i}" for i in range(12)]
        + [f"I cannot log in {i}" for i in range(12)]
        + [f"download invoice number {i}" for i in range(12)]
        + [f"change my billing address {i}" for i in range(12)]
    )
    labels = (
        ["password_reset"] * 12
        + ["login_problem"] * 12
        + ["invoice_request"] * 12
        + ["billing_address"] * 12
    )
    clf = IntentClassifier(cv_folds=3, target_precision=0.9).fit(texts, labels)
    data = clf.rejection_data_
    assert data is not None
    # every message once as a known intent, and once as an intent the model never saw
    assert (~data.unknown).sum() == len(texts)
    assert data.unknown.sum() == len(texts)
    assert not data.correct[data.unknown].any()
    # the learnt threshold is the one the rule picks from these rows
    score = clf.rule_.score(data.conf, data.margin, data.familiarity)
    weights = data.weights(clf.oos_prior)
    familiar = data.answerable & (data.familiarity >= clf.rule_.unfamiliar_)
    assert weighted_threshold(score, familiar, data.correct, weights, 0.9) == clf.threshold_
    assert weighted_threshold(score, familiar, data.correct, weights, 0.99) >= clf.threshold_


def test_choose_threshold_keeps_the_longest_precise_prefix() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)
    ok = np.ones(8, dtype=bool)
    # running precision: 1,1,1,1,.8,.83,.71,.62 -> 80% target keeps six answers
    assert choose_threshold(conf, ok, correct, 0.8, min_answers=1) == 0.6
    assert choose_threshold(conf, ok, correct, 0.95, min_answers=1) == 0.8
    assert choose_threshold(conf, ok, np.zeros(8, dtype=bool), 0.9, min_answers=1) == 1.0


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    prob = np.exp(logits / 2.0)
    prob /= prob.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=p) for p in prob])
    assert fit_temperature(logits, y) == pytest.approx(2.0, rel=0.1)
