"""Canned replies as agents use them: a body is checked and rendered like an FAQ answer (the
same sandbox and limits, ``bot.template_limits``), with the conversation's variables.

Storage and the rules of who may do what are ``handoff.canned``'s; this module supplies the
template side, which needs the bot's sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2.sandbox import SecurityError

from bot.answers import render_answer
from bot.template_limits import SAMPLE_VARIABLES, LimitedSandbox, check_limits
from handoff.desk import HandoffDetail

AGENT_VARIABLE = "agent_name"


class _StrictSandbox(LimitedSandbox):
    """The answers' sandbox, refusing (instead of rendering as empty) unsafe attributes."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} is unsafe")


_STRICT = _StrictSandbox(autoescape=False)


def body_check(links: dict[str, str]) -> Callable[[str], None]:
    """A ``check`` for ``handoff.canned``: ValueError when a body uses an unknown variable,
    is not a valid template, or does too much work."""
    variables = {**links, **SAMPLE_VARIABLES, AGENT_VARIABLE: "Sam"}

    def check(body: str) -> None:
        check_limits(body, variables)
        try:  # like an FAQ answer: reaching for an unsafe attribute is refused, not blanked
            rendered = _STRICT.from_string(body).render(**variables)
        except SecurityError as exc:
            raise ValueError(f"the template is unsafe: {exc}") from exc
        if not rendered.strip():
            raise ValueError("the template renders as empty text")

    return check


def variables(detail: HandoffDetail, links: dict[str, str], agent_name: str) -> dict[str, Any]:
    """The variables of a conversation: customer, account, CSM, links, and the agent."""
    found: dict[str, Any] = {
        **links,
        "contact_name": detail.contact.name,
        AGENT_VARIABLE: agent_name,
    }
    if detail.account is not None:
        found["account_name"] = detail.account.name
        found["plan"] = detail.account.plan
        found["csm_name"] = detail.csm.name if detail.csm else None
    return found


def render(body: str, values: dict[str, Any]) -> str:
    """The text a canned reply becomes in this conversation (ValueError if it cannot)."""
    return render_answer(body, values)


def names(links: dict[str, str]) -> list[str]:
    """Every variable a body may use, for the help texts."""
    return sorted({*links, *SAMPLE_VARIABLES, AGENT_VARIABLE})
