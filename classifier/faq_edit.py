"""Edit an FAQ answer in ``intents.yaml`` without a redeploy.

Only the answer text changes: the examples (and so the model's data hash,
``classifier.train.faq_data_hash``) stay the same, so no retraining is needed. The new answer
is checked first (sandboxed Jinja2: it must parse and render with sample values), then the
whole file is re-validated with :func:`classifier.faq.load_faq` before it atomically replaces
the old one (temp file in the same folder + ``os.replace``).

The file is edited as text, not re-dumped: only the lines of the edited answer change (the
answer is written as a ``|`` block in place of the old value), so comments, descriptions and
the layout of every other intent stay byte for byte as they were. The result must parse to
the same data with only that answer changed, or nothing is written.

A variable that can be empty for some customers (``contact_name``, ``account_name``,
``plan``, ``csm_name``: an anonymous web chat visitor has none of them) must not be printed
bare: the answer has to say what to write instead (``{{ csm_name or "your account
manager" }}``) or leave the sentence out (``{% if csm_name %}...{% endif %}``). Otherwise
the save is refused, naming the variable and the fallback to use.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from classifier.faq import ANSWERED_CATEGORIES, FaqError, faq_file, load_faq

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 4000
_write_lock = threading.Lock()  # one edit at a time within this process


class _StrictSandbox(SandboxedEnvironment):
    """Refuses (instead of silently rendering as empty) access to unsafe attributes."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} is unsafe")


def header_comment(text: str) -> str:
    """The leading comment block of a YAML file (comment and blank lines before any data)."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old or the new file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def check_answer(answer: str, variables: dict[str, Any]) -> str:
    """The answer, stripped, if it parses and renders in the sandbox; else :class:`FaqError`."""
    answer = answer.replace("\r\n", "\n").strip()
    if not answer:
        raise FaqError("the answer is empty")
    if len(answer) > MAX_ANSWER_CHARS:
        raise FaqError(f"the answer is longer than {MAX_ANSWER_CHARS} characters")
    env = _StrictSandbox(autoescape=False)
    try:
        rendered = env.from_string(answer).render(**variables).strip()
    except SecurityError as exc:
        raise FaqError(f"the answer template is unsafe: {exc}") from exc
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise FaqError(f"the answer template is not valid{where}: {exc}") from exc
    if not rendered:
        raise FaqError("the answer renders as empty text")
    check_empty_variables(env, answer, variables)
    return answer + "\n"


# Variables that depend on who is asking, and what to write when they are empty.
CUSTOMER_VARIABLES = {
    "contact_name": "there",
    "account_name": "your company",
    "plan": "your",
    "csm_name": "your account manager",
}


class _Empty:
    """A customer variable without a value: false in ``if``/``or``, marked when printed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"\x00{self.name}\x00"


def check_empty_variables(
    env: SandboxedEnvironment, answer: str, variables: dict[str, Any]
) -> None:
    """Refuse an answer that would print a customer variable bare when it is empty."""
    empty = {name: _Empty(name) for name in CUSTOMER_VARIABLES}
    rendered = env.from_string(answer).render(**{**variables, **empty})
    bare = [name for name in CUSTOMER_VARIABLES if f"\x00{name}\x00" in rendered]
    if bare:
        name = bare[0]
        raise FaqError(
            f"{{{{ {name} }}}} is empty for some customers (an anonymous visitor has none):"
            f' write {{{{ {name} or "{CUSTOMER_VARIABLES[name]}" }}}}'
            f" or wrap it in {{% if {name} %}}...{{% endif %}}"
        )


def replace_answer(text: str, intent: str, answer: str) -> str:
    """``text`` with the ``answer`` of ``intent`` replaced by ``answer`` as a ``|`` block.

    Only the old answer's lines change (or one block is added before ``examples`` when the
    intent had no answer). FaqError when the intent's block cannot be found.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"  {intent}:"), None)
    if start is None:
        raise FaqError(f"no intent {intent!r} in the FAQ file")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > 2):
        end += 1
    block = [(i, lines[i]) for i in range(start + 1, end)]
    new_block = ["    answer: |\n"] + [
        f"      {line}\n" if line.strip() else "\n" for line in answer.rstrip("\n").split("\n")
    ]
    key = next((i for i, line in block if line.startswith("    answer:")), None)
    if key is None:
        at = next((i for i, line in block if line.startswith("    examples:")), end)
        return "".join(lines[:at] + new_block + lines[at:])
    stop = key + 1
    while stop < end and (not lines[stop].strip() or _indent(lines[stop]) > 4):
        stop += 1
    while stop > key + 1 and not lines[stop - 1].strip():  # keep blank lines after the answer
        stop -= 1
    return "".join(lines[:key] + new_block + lines[stop:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def set_answer(faq_path: Path, intent: str, answer: str, variables: dict[str, Any]) -> None:
    """Replace the answer of ``intent`` in the FAQ file (validated, atomic)."""
    file = faq_file(Path(faq_path))
    checked = check_answer(answer, variables)
    with _write_lock:
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        spec = (data or {}).get("intents", {}).get(intent)
        if not isinstance(spec, dict):
            raise FaqError(f"no intent {intent!r} in {file.name}")
        if spec.get("category") not in ANSWERED_CATEGORIES:
            raise FaqError(f"intent {intent!r} is never answered automatically")
        new_text = replace_answer(text, intent, checked)
        expected = {**data, "intents": {**data["intents"], intent: {**spec, "answer": checked}}}
        try:
            same = yaml.safe_load(new_text) == expected
        except yaml.YAMLError:
            same = False
        if not same:
            raise FaqError(f"the answer of {intent!r} could not be written in place")
        probe = file.with_name(f".{file.name}.check")
        try:
            probe.write_text(new_text, encoding="utf-8")
            load_faq(probe)  # the whole file must still load as the bot will load it
        finally:
            probe.unlink(missing_ok=True)
        write_atomically(file, new_text)
    logger.info("FAQ answer of %s changed", intent)
