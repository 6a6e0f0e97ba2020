"""Editing one FAQ answer: a text edit of that answer only, and no bare empty variables."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from classifier.faq import FaqError, load_faq
from classifier.faq_edit import (
    add_examples,
    check_answer,
    header_comment,
    restore_text,
    set_answer,
)
from handoff.text import mask_personal_data

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


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return [d[1:] for d in diff if d.startswith("+")], [d[1:] for d in diff if d.startswith("-")]


def test_adding_examples_to_an_intent_adds_only_their_lines_and_keeps_comments(faq: Path) -> None:
    before = faq.read_text(encoding="utf-8")
    change = add_examples(
        faq.parent, "password_reset", ["my pass word: gone", "I FORGOT MY PASSWORD", "pw lost"]
    )
    after = faq.read_text(encoding="utf-8")
    added, removed = _changed_lines(before, after)
    assert removed == [] and change.previous_text == before
    assert added == ["      - 'my pass word: gone'", "      - pw lost"]  # a repeat is skipped
    assert change.added == ("my pass word: gone", "pw lost") and not change.created
    assert header_comment(after) == header_comment(before)
    examples = yaml.safe_load(after)["intents"]["password_reset"]["examples"]
    assert examples[-2:] == ["my pass word: gone", "pw lost"]


def test_a_new_intent_is_appended_as_one_block_and_the_file_can_be_restored(faq: Path) -> None:
    before = faq.read_text(encoding="utf-8")
    add_examples(
        faq.parent,
        "screen_reader_support",
        ["do you support screen readers", "screen reader support?"],
        answer="Yes, with JAWS and NVDA.\n",
        category="faq",
    )
    after = faq.read_text(encoding="utf-8")
    added, removed = _changed_lines(before, after)
    assert removed == []
    assert added == [
        "  screen_reader_support:",
        "    category: faq",
        "    answer: |",
        "      Yes, with JAWS and NVDA.",
        "    examples:",
        "      - do you support screen readers",
        "      - screen reader support?",
    ]
    spec = load_faq(faq).intents["screen_reader_support"]
    assert spec.answer == "Yes, with JAWS and NVDA.\n" and len(spec.examples) == 2
    restore_text(faq.parent, before)
    assert faq.read_text(encoding="utf-8") == before


def test_a_new_intent_without_an_answer_is_refused_and_nothing_is_written(faq: Path) -> None:
    before = faq.read_bytes()
    with pytest.raises(FaqError, match="needs an answer"):
        add_examples(faq.parent, "new_topic", ["one question", "another one"], category="faq")
    assert faq.read_bytes() == before


def test_personal_data_in_an_example_is_masked() -> None:
    masked = mask_personal_data("mail jo.doe@acme.test or call +44 20 7946 0958, order 1234567")
    assert masked == "mail [email] or call [phone], order [number]"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("my invoice from 2024-05-01 is wrong", "my invoice from 2024-05-01 is wrong"),
        ("order 12345678 placed on 01.05.2024", "order [number] placed on 01.05.2024"),
        ("ring (030) 123-4567 after 5", "ring [phone] after 5"),
        ("we run version 2.3.1", "we run version 2.3.1"),
    ],
)
def test_dates_and_versions_are_kept_and_a_bracketed_area_code_is_masked(
    text: str, masked: str
) -> None:
    assert mask_personal_data(text) == masked
