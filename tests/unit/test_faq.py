"""The bundled FAQ and its loader's validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SandboxedEnvironment

from classifier import FaqError, load_faq, model_is_current, train_faq_model
from tests.conftest import ROOT

REQUIRED = {
    "password_reset": "faq",
    "two_factor_auth": "faq",
    "invoice_request": "faq",
    "payment_failed": "faq",
    "change_payment_method": "faq",
    "add_users_seats": "faq",
    "data_export": "faq",
    "integrations": "faq",
    "api_limits": "faq",
    "bug_report": "faq",
    "service_status": "faq",
    "feature_request": "faq",
    "cancel_subscription": "strategic",
    "contract_renewal": "strategic",
    "pricing_upgrade": "strategic",
    "complaint": "strategic",
    "legal_security_gdpr": "strategic",
    "talk_to_human": "human",
    "greeting": "smalltalk",
    "thanks": "smalltalk",
    "out_of_scope": "out_of_scope",
}


def test_bundled_faq_covers_the_product() -> None:
    faq = load_faq(ROOT / "data" / "faq")
    assert len(faq.intents) >= 30
    for name, category in REQUIRED.items():
        assert faq.intents[name].category == category, name
    for spec in faq:
        assert len(spec.examples) >= 40, spec.name
        assert len({e.lower() for e in spec.examples}) == len(spec.examples), spec.name


def test_bundled_answers_render_with_links() -> None:
    faq = load_faq(ROOT / "data" / "faq")
    env = SandboxedEnvironment()
    text = env.from_string(faq.intents["password_reset"].answer or "").render(
        reset_url="https://example.test/reset", product_name="Acme"
    )
    assert "https://example.test/reset" in text


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "intents.yaml"
    path.write_text(body)
    return path


def test_loader_lists_every_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
intents:
  a:
    category: faq
    examples: [one, two]
  b:
    category: strategic
    answer: should not be here
    examples: [three, ONE]
  c:
    category: nonsense
    examples: [x, y]
  d:
    category: faq
    answer: "{% if %}"
    examples: [p, q]
""",
    )
    with pytest.raises(FaqError) as err:
        load_faq(path)
    message = str(err.value)
    assert "'a': category 'faq' needs an answer" in message
    assert "never auto-answered" in message
    assert "'one' is also under 'a'" in message.lower()
    assert "category must be one of" in message
    assert "answer template line" in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(FaqError, match="not found"):
        load_faq(tmp_path / "nope.yaml")
    with pytest.raises(FaqError, match="not valid YAML"):
        load_faq(_write(tmp_path, "intents: [unclosed"))


def test_model_staleness_follows_the_faq(tmp_path: Path) -> None:
    faq = _write(
        tmp_path,
        "intents:\n"
        "  hi: {category: smalltalk, answer: Hello!, examples: [hi, hello, hey, howdy]}\n"
        "  bye: {category: smalltalk, answer: Bye!, examples: [bye, goodbye, ciao, farewell]}\n",
    )
    model = tmp_path / "m.joblib"
    assert "no model" in (model_is_current(faq, model, "tfidf") or "")
    train_faq_model(faq, model)
    assert model_is_current(faq, model, "tfidf") is None
    assert "backend" in (model_is_current(faq, model, "embeddings") or "")
    faq.write_text(faq.read_text().replace("ciao", "see you"))
    assert "changed" in (model_is_current(faq, model, "tfidf") or "")


def test_every_answered_intent_has_a_title_that_fits_a_button() -> None:
    faq = load_faq(ROOT / "data" / "faq")
    titles = [spec.title for spec in faq if spec.auto_answer]
    assert all(0 < len(title) <= 20 for title in titles)
    assert faq.intents["password_reset"].display_title == "Password reset"


def test_an_intent_without_a_title_gets_one_from_its_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "intents:\n"
        "  sso_login_problems: {category: faq, answer: A, examples: [one, two]}\n"
        "  a_very_long_intent_name_indeed: {category: faq, answer: B, examples: [x, y]}\n",
    )
    faq = load_faq(path)
    assert faq.intents["sso_login_problems"].display_title == "Sso login problems"
    assert faq.intents["a_very_long_intent_name_indeed"].display_title == "A very long intent…"


@pytest.mark.parametrize("title", ["''", "A title far longer than twenty", "[1, 2]"])
def test_a_title_that_cannot_label_a_button_is_refused(tmp_path: Path, title: str) -> None:
    path = _write(
        tmp_path,
        "intents:\n"
        f"  a: {{category: faq, title: {title}, answer: A, examples: [one, two]}}\n"
        "  b: {category: faq, answer: B, examples: [x, y]}\n",
    )
    with pytest.raises(FaqError, match="title must be 1-20 characters"):
        load_faq(path)
