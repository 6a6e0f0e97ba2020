"""Customer-facing texts: FAQ answer templates and the bot's own fixed lines."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError

from bot.template_limits import LimitedSandbox

_ENV = LimitedSandbox(autoescape=False, keep_trailing_newline=False)  # bounded work and output

HANDOFF_TEXT = (
    "Thanks, I've passed this to our support team. A person will reply here as soon as "
    "possible{eta}."
)
# A sticker, a voice note, an uncaptioned photo or a message of emoji only, on every channel.
NON_TEXT_TEXT = (
    "Thanks! I can only read text written in words for now. Could you describe your "
    "question in a few words? Or send /human to talk to a person."
)
HELP_TEXT = (
    "I'm the {product} support assistant. Ask me a question in your own words, e.g. "
    '"how do I reset my password?" or "where are my invoices?". Send /human at any time to '
    "talk to a person."
)
WELCOME_TEXT = "Hi{name}! I'm the {product} support assistant. How can I help you today?"
LINKED_TEXT = "Thanks{name}, your chat is now linked to {account}. How can I help?"
LINK_FAILED_TEXT = (
    "Hi! That sign-in link is no longer valid, but I can still help. What's your question?"
)
DID_IT_HELP_TEXT = "Did this solve it?"
THANKS_FEEDBACK_TEXT = "Great, glad that helped!"
SLOW_DOWN_TEXT = (
    "You're sending messages faster than we can read them. We have them all; please wait "
    "a moment for an answer."
)
CSAT_THANKS_TEXT = "Thank you for your feedback!"
CLARIFY_TEXT = "I want to be sure I understand. Did you mean one of these?"
TALK_TO_PERSON_TEXT = "Talk to a person"  # a button: at most 20 characters (WhatsApp)
CSAT_REQUEST_TEXT = "How would you rate the help you received? (1 = poor, 5 = excellent)"


@lru_cache(maxsize=512)
def _compiled(template: str) -> Template:
    """Compiling costs about a millisecond, rendering a few microseconds: compile each text
    once (an edited answer is a new text, so it is compiled anew)."""
    return _ENV.from_string(template)


class _Missing(str):
    """A customer variable we do not know for this customer: false in ``{% if %}`` and in
    ``or`` (so a template's own fallback wins), but printed bare it reads as a sensible text
    ("your account manager") rather than nothing."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False


def render_answer(template: str, variables: dict[str, Any]) -> str:
    """Render an admin-written answer template in a sandbox; unknown variables render empty,
    an empty customer variable (``csm_name`` of an anonymous visitor) as a neutral text."""
    from classifier.faq_edit import CUSTOMER_VARIABLES

    variables = {
        **variables,
        **{
            name: _Missing(fallback)
            for name, fallback in CUSTOMER_VARIABLES.items()
            if not variables.get(name)
        },
    }
    try:
        return _compiled(template).render(**variables).strip()
    except TemplateError as exc:
        raise ValueError(f"answer template cannot be rendered: {exc}") from exc
