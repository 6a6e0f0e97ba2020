"""Editing one FAQ answer: a text edit of that answer only, and no bare empty variables."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from classifier.faq import FaqError
from classifier.faq_edit import check_answer, set_answer

ROOT = Path(__file__).resolve().parents[2]
LINKS = {"reset_url": "https://example.test/reset", "docs_url": "https://docs.example.test"}
SAMPLE = {"contact_name": "Alex", "account_name": "Acme", "plan": "Business", "csm_name": "Sam"}


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "data" / "faq", tmp_path / "faq")
    return tmp_path / "faq" / "intents.yaml"


def test_saving_one_answer_changes_only_the_lines_of_that_answer(faq: Path) -> None:
    before = faq.read_text(encoding="utf-8").splitlines()
    new = "Reset it at {{ reset_url }}.\nStill stuck? Reply here."
    set_answer(faq.parent, "password_reset", new, {**LINKS, **SAMPLE})
    after = faq.read_text(encoding="utf-8").splitlines()
    diff = [
        line
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    old_answer = yaml.safe_load("\n".join(before))["intents"]["password_reset"]["answer"]
    assert sorted(d for d in diff if d.startswith("+")) == sorted(
        ["+      Reset it at {{ reset_url }}.", "+      Still stuck? Reply here."]
    )
    assert len([d for d in diff if d.startswith("-")]) == len(old_answer.splitlines())
    assert yaml.safe_load(faq.read_text())["intents"]["password_reset"]["answer"] == new + "\n"


def test_an_answer_printing_csm_name_bare_is_refused_with_a_fallback_to_use() -> None:
    with pytest.raises(FaqError, match='csm_name or "your account manager"'):
        check_answer("Your account manager {{ csm_name }} will call you.", SAMPLE)


@pytest.mark.parametrize(
    "answer",
    [
        'Your account manager {{ csm_name or "your account manager" }} will call.',
        "We will call you{% if csm_name %} ({{ csm_name }}){% endif %}.",
        'Hi {{ contact_name|default("there", true) }}!',
    ],
)
def test_an_answer_with_a_fallback_for_an_empty_variable_is_accepted(answer: str) -> None:
    assert check_answer(answer, SAMPLE) == answer + "\n"


def test_no_bundled_answer_prints_a_customer_variable_bare() -> None:
    from classifier.faq import load_faq
    from classifier.faq_edit import check_empty_variables

    env = SandboxedEnvironment()
    for name, info in load_faq(ROOT / "data" / "faq").intents.items():
        if info.answer:
            check_empty_variables(env, info.answer, {**LINKS, **SAMPLE})
