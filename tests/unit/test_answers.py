from __future__ import annotations

import pytest

from bot.answers import render_answer
from handoff.replies import split_text


def test_split_keeps_every_word_in_order_within_the_limit() -> None:
    words = [f"word{i}" for i in range(1200)]
    text = " ".join(words)
    parts = split_text(text, 4096)
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == words


def test_split_cuts_an_unbroken_string_at_the_limit() -> None:
    parts = split_text("x" * 5000, 4096)
    assert [len(p) for p in parts] == [4096, 904]


def test_short_text_is_one_part() -> None:
    assert split_text("hi", 4096) == ["hi"]


def test_template_renders_missing_variables_as_empty() -> None:
    assert render_answer("Hi {{ contact_name or 'there' }}!", {}) == "Hi there!"


def test_template_sandbox_refuses_attribute_tricks() -> None:
    with pytest.raises(ValueError):
        render_answer("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_an_empty_customer_variable_printed_bare_falls_back_to_a_neutral_text() -> None:
    from bot.answers import render_answer

    text = render_answer("Ask {{ csm_name }} about it.", {"csm_name": None})
    assert text == "Ask your account manager about it."
    guarded = "{% if contact_name %}Hi {{ contact_name }}! {% endif %}Done."
    assert render_answer(guarded, {}) == "Done."
    assert render_answer("{{ csm_name or 'our team' }}", {}) == "our team"
    assert render_answer("Ask {{ csm_name }}.", {"csm_name": "Sam"}) == "Ask Sam."
