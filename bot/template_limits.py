"""Limits on the work and output of admin-written answer templates (Jinja2, sandboxed).

Jinja2's sandbox stops templates from reaching Python internals, not from working too hard:
``range(99999999)``, ``"x" * 100000000``, ``"x"|center(10**9)`` or a string doubled by a few
``{% set a = a ~ a %}`` each take the server's CPU or memory. :class:`LimitedSandbox` keeps
only the globals and filters an answer needs, caps ranges, repetitions and every filter's
result, and renders at most ``MAX_OUTPUT`` characters. :func:`check_template` is what the
admin page runs before saving: it also refuses variables the bot does not provide (naming
them) and templates whose loops nest or whose assignments chain too deeply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jinja2 import Template, TemplateError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_OUTPUT = 20_000  # characters: far above what any channel shows in one message
MAX_RANGE = 1_000
MAX_POWER = 64
MAX_LOOP_NESTING = 2
MAX_ASSIGNMENTS = 10
MAX_CHECK_SECONDS = 0.5
FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "replace",
    "round",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
)


class TemplateTooCostly(SecurityError):
    """A template that would work or write more than the limits allow."""


def _limited_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise TemplateTooCostly(f"range() of more than {MAX_RANGE} numbers")
    return found


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _capped(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_context = hasattr(func, "jinja_pass_arg")  # then args[0] is Jinja's, not ours

    def checked(*args: Any, **kwargs: Any) -> Any:
        given = args[1:] if passes_context else args
        if name == "replace" and len(given) >= 3 and isinstance(given[0], str):
            text, old, new = given[0], str(given[1]), str(given[2])
            grows = (len(text) + 1) * len(new) if not old else text.count(old) * len(new)
            if len(text) + grows > MAX_OUTPUT:
                raise TemplateTooCostly(f"the {name} filter would make a text too long")
        if name == "join" and given:
            separator = given[1] if len(given) > 1 else kwargs.get("d", "")
            items = given[0] if isinstance(given[0], list | tuple | range | str) else []
            if len(items) * len(str(separator)) > MAX_OUTPUT:
                raise TemplateTooCostly(f"the {name} filter would make a text too long")
        result = func(*args, **kwargs)
        if _size(result) > MAX_OUTPUT:
            raise TemplateTooCostly(f"the {name} filter made a text too long")
        return result

    for attribute in ("jinja_pass_arg",):  # keep how Jinja passes the environment/context
        if hasattr(func, attribute):
            setattr(checked, attribute, getattr(func, attribute))
    return checked


class LimitedTemplate(Template):
    """A template whose rendering stops at ``MAX_OUTPUT`` characters."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        parts: list[str] = []
        written = 0
        for chunk in self.generate(*args, **kwargs):
            written += len(chunk)
            if written > MAX_OUTPUT:
                raise TemplateTooCostly(f"the answer is longer than {MAX_OUTPUT} characters")
            parts.append(chunk)
        return "".join(parts)


class _LimitedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` so that its result is checked (``LimitedSandbox.checked_text``):
    without it, a few ``{% set a = a ~ a ~ a %}`` grow a text exponentially."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_text(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedSandbox(SandboxedEnvironment):
    """The sandbox with bounded work: few globals, capped ranges, operators and filters."""

    intercepted_binops = frozenset({"*", "**", "+"})
    template_class = LimitedTemplate
    code_generator_class = _LimitedCodeGenerator

    def checked_text(self, value: Any) -> Any:
        if _size(value) > MAX_OUTPUT:
            raise TemplateTooCostly(f"a text longer than {MAX_OUTPUT} characters")
        return value

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.clear()
        self.globals["range"] = _limited_range
        self.filters = {name: _capped(name, self.filters[name]) for name in FILTERS}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise TemplateTooCostly(f"an exponent larger than {MAX_POWER}")
        if operator == "*":
            sizes = [(_size(left), right), (_size(right), left)]
            for size, times in sizes:
                if size and isinstance(times, int) and size * times > MAX_OUTPUT:
                    raise TemplateTooCostly("a repetition that makes a text too long")
        result = super().call_binop(context, operator, left, right)
        return self.checked_text(result) if operator == "+" else result


def _loop_nesting(node: nodes.Node, depth: int = 0) -> int:
    deepest = depth
    for child in node.iter_child_nodes():
        inner = depth + 1 if isinstance(child, nodes.For) else depth
        deepest = max(deepest, _loop_nesting(child, inner))
    return deepest


def check_template(source: str, variables: dict[str, Any], env: LimitedSandbox) -> str:
    """Render ``source`` once with ``variables``; ValueError naming what is wrong.

    Refused: syntax errors, variables not in ``variables``, loops nested deeper than
    ``MAX_LOOP_NESTING``, more than ``MAX_ASSIGNMENTS`` ``set`` statements, anything over the
    sandbox's limits, and a render slower than ``MAX_CHECK_SECONDS``.
    """
    try:
        tree = env.parse(source)
        used = meta.find_undeclared_variables(tree)  # also fails on a filter we do not offer
    except TemplateError as exc:
        raise ValueError(f"the answer template is not valid: {exc}") from exc
    unknown = sorted(used - set(variables) - set(env.globals))
    if unknown:
        known = ", ".join(sorted(variables))
        raise ValueError(f"unknown variable(s) {', '.join(unknown)} (available: {known})")
    if _loop_nesting(tree) > MAX_LOOP_NESTING:
        raise ValueError(f"loops nested more than {MAX_LOOP_NESTING} deep")
    if len(list(tree.find_all((nodes.Assign, nodes.AssignBlock)))) > MAX_ASSIGNMENTS:
        raise ValueError(f"more than {MAX_ASSIGNMENTS} set statements")
    started = time.monotonic()
    try:
        rendered = env.from_string(source).render(**variables)
    except TemplateTooCostly as exc:
        raise ValueError(f"the answer template does too much: {exc}") from exc
    except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        raise ValueError(f"the answer template cannot be rendered: {exc}") from exc
    if time.monotonic() - started > MAX_CHECK_SECONDS:
        raise ValueError("the answer template takes too long to render")
    return rendered


ANSWER_SANDBOX = LimitedSandbox(autoescape=False)
# Values of the customer variables an answer is checked with (the links come from settings).
SAMPLE_VARIABLES = {
    "contact_name": "Alex",
    "account_name": "Acme",
    "plan": "Business",
    "csm_name": "Sam",
}


def check_limits(answer: str, variables: dict[str, Any]) -> None:
    """ValueError when an answer template uses unknown variables or does too much work."""
    check_template(answer.replace("\r\n", "\n").strip(), variables, ANSWER_SANDBOX)
