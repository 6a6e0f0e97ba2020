"""What a customer did, in words, from a stored tap or command (issue 14 item 9)."""

from __future__ import annotations

import pytest

from handoff.activity import describe


@pytest.mark.parametrize(
    ("kind", "text", "data", "words"),
    [
        ("callback", "csat:5:18", None, "rated 5/5"),
        ("callback", "5", "csat:5:18", "rated 5/5"),
        ("callback", "helpful:no:x", None, "said the answer did not help"),
        ("callback", "Yes, solved", "helpful:yes:reset_password", "said the answer helped"),
        ("callback", "clarify:password_reset", None, "chose: Password reset"),
        ("callback", "Reset my password", "clarify:password_reset", "chose: Reset my password"),
        ("callback", "human:clarify", None, "asked for a person"),
        ("command", "/start vip-token-123", None, "linked their chat"),
        ("command", "/start", None, "started the chat"),
        (None, "csat:4:2", None, "rated 4/5"),  # an old snapshot without the kind
    ],
)
def test_a_tap_or_command_reads_as_what_the_customer_did(
    kind: str | None, text: str, data: str | None, words: str
) -> None:
    assert describe(kind, text, data) == words


def test_an_ordinary_message_is_left_alone() -> None:
    assert describe("text", "csat:5:18 is what the button said", None) is None
