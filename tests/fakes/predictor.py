"""A deterministic intent predictor: scripted ``classifier.Prediction`` per message text.

Passed to ``create_app(settings, predictor=...)`` in place of the trained model, so a test
chooses exactly what the classifier says (an abstain reason, the alternatives) for a text.
"""

from __future__ import annotations

from classifier import AMBIGUOUS, UNKNOWN_TOPIC, Prediction

# What the scripted texts mean (none names a strategic term or sounds negative).
AMBIGUOUS_BILLING = "that billing thing with my card"  # three answerable candidates
AMBIGUOUS_LOGIN = "the thing with signing in"  # two answerable candidates
AMBIGUOUS_PLAN = "about our plan next year"  # only strategic intents are close
UNKNOWN = "what is the capital of peru"
PASSWORD = "how do I reset my password"

SCRIPT: dict[str, Prediction] = {
    AMBIGUOUS_BILLING: Prediction(
        intent=None,
        top_intent="invoice_request",
        confidence=0.41,
        alternatives=(
            ("payment_failed", 0.33),
            ("change_payment_method", 0.17),
            ("billing_address_vat", 0.05),
            ("refund_request", 0.04),
        ),
        reason=AMBIGUOUS,
    ),
    AMBIGUOUS_LOGIN: Prediction(
        intent=None,
        top_intent="password_reset",
        confidence=0.46,
        alternatives=(("login_problem", 0.40), ("two_factor_auth", 0.06), ("sso_setup", 0.04)),
        reason=AMBIGUOUS,
    ),
    AMBIGUOUS_PLAN: Prediction(
        intent=None,
        top_intent="contract_renewal",
        confidence=0.38,
        alternatives=(
            ("pricing_upgrade", 0.34),
            ("downgrade_plan", 0.2),
            ("invoice_request", 0.05),
        ),
        reason=AMBIGUOUS,
    ),
    UNKNOWN: Prediction(
        intent=None,
        top_intent="out_of_scope",
        confidence=0.83,
        alternatives=(("feature_request", 0.06),),
        reason=UNKNOWN_TOPIC,
    ),
    PASSWORD: Prediction(
        intent="password_reset",
        top_intent="password_reset",
        confidence=0.97,
        alternatives=(("login_problem", 0.02),),
    ),
}


class FakePredictor:
    """Answers from ``SCRIPT`` (or the given script); any other text is an unknown topic."""

    def __init__(self, script: dict[str, Prediction] | None = None) -> None:
        self.script = dict(SCRIPT if script is None else script)
        self.seen: list[str] = []

    def predict_one(self, text: str) -> Prediction:
        self.seen.append(text)
        return self.script.get(text, self.script[UNKNOWN])
