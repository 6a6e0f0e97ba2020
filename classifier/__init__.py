"""Intent classification for triagebot: which FAQ a message asks, and whether to trust it.

Library API (used by the bot and the benchmarks; never imports the bot, FastAPI or telegram)::

    from classifier import IntentClassifier, Prediction
    clf = IntentClassifier(backend="tfidf").fit(texts, labels)
    clf.predict(["how do i reset my password"])[0]  # Prediction(intent=..., confidence=...)
"""

from classifier.faq import Faq, FaqError, IntentSpec, load_faq
from classifier.model import (
    ABSTAIN_REASONS,
    AMBIGUOUS,
    LOW_CONFIDENCE,
    OUT_OF_SCOPE,
    UNKNOWN_TOPIC,
    IntentClassifier,
    ModelIncompatibleError,
    Prediction,
)
from classifier.train import faq_data_hash, model_is_current, train_faq_model

__all__ = [
    "ABSTAIN_REASONS",
    "AMBIGUOUS",
    "LOW_CONFIDENCE",
    "OUT_OF_SCOPE",
    "UNKNOWN_TOPIC",
    "Faq",
    "FaqError",
    "IntentClassifier",
    "IntentSpec",
    "ModelIncompatibleError",
    "Prediction",
    "faq_data_hash",
    "load_faq",
    "model_is_current",
    "train_faq_model",
]
