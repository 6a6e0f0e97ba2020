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

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from classifier.faq import (
    ANSWERED_CATEGORIES,
    CATEGORIES,
    MAX_TITLE,
    FaqError,
    faq_file,
    load_faq,
)

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 4000
_write_lock = threading.RLock()  # one edit at a time within this process


@contextlib.contextmanager
def faq_lock(faq_path: Path) -> Iterator[Path]:
    """Hold the FAQ file for an edit: one edit at a time in this process and across the
    processes sharing the file (an ``fcntl.flock`` on ``.intents.yaml.lock`` beside it).
    Yields the YAML file's path."""
    file = faq_file(Path(faq_path))
    with _write_lock, open(file.with_name(f".{file.name}.lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield file
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
    with faq_lock(file):
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        spec = (data or {}).get("intents", {}).get(intent)
        if not isinstance(spec, dict):
            raise FaqError(f"no intent {intent!r} in {file.name}")
        if spec.get("category") not in ANSWERED_CATEGORIES:
            raise FaqError(f"intent {intent!r} is never answered automatically")
        new_text = replace_answer(text, intent, checked)
        expected = {**data, "intents": {**data["intents"], intent: {**spec, "answer": checked}}}
        _write_checked(file, new_text, expected, f"the answer of {intent!r}")
    logger.info("FAQ answer of %s changed", intent)


def _write_checked(file: Path, new_text: str, expected: Any, what: str) -> None:
    """Write ``new_text`` (a line-level edit) only if it parses to ``expected`` and loads as
    the bot will load it; FaqError otherwise, and nothing is written."""
    try:
        same = yaml.safe_load(new_text) == expected
    except yaml.YAMLError:
        same = False
    if not same:
        raise FaqError(f"{what} could not be written in place")
    _check_loads(file, new_text)
    write_atomically(file, new_text)


def _check_loads(file: Path, new_text: str) -> None:
    """FaqError unless ``new_text`` loads as the bot will load the FAQ file."""
    probe = file.with_name(f".{file.name}.check")
    try:
        probe.write_text(new_text, encoding="utf-8")
        load_faq(probe)
    finally:
        probe.unlink(missing_ok=True)


@dataclass(frozen=True)
class FaqChange:
    """What :func:`add_examples` did: the file's text before (to restore it byte for byte),
    the examples written (repeats of examples already in the file are left out) and whether
    the intent is new."""

    previous_text: str
    added: tuple[str, ...]
    created: bool


def _normal(example: str) -> str:
    return " ".join(example.split())


def _example_lines(examples: Sequence[str]) -> list[str]:
    """``      - text`` lines, quoted by the YAML dumper where the text needs it."""
    lines = []
    for example in examples:
        dumped = yaml.safe_dump([example], allow_unicode=True, width=10**6).rstrip("\n")
        if "\n" in dumped:
            raise FaqError(f"example {example!r} cannot be written on one line")
        lines.append(f"      {dumped}\n")
    return lines


def add_examples(
    faq_path: Path,
    intent: str,
    examples: Sequence[str],
    *,
    answer: str | None = None,
    category: str | None = None,
    title: str | None = None,
) -> FaqChange:
    """Add ``examples`` to ``intent`` in the FAQ file, creating the intent when it is new.

    A new intent needs ``category`` (one the bot answers needs an ``answer``, checked with
    :func:`check_answer` by the caller) and is appended after the last intent; for an existing
    intent the example lines are appended to its ``examples`` list, and a given ``answer``
    replaces its answer (``category`` and ``title`` are left as they are). Only those lines
    change: comments and every other intent stay byte for byte. Examples already in the file
    (any intent, case and spacing aside) are skipped; FaqError when none is left, or when the
    result would not load. Atomic, under :func:`faq_lock`.
    """
    with faq_lock(Path(faq_path)) as file:
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        intents = data.get("intents") or {}
        known = {
            _normal(str(e)).lower()
            for spec in intents.values()
            if isinstance(spec, dict)
            for e in spec.get("examples") or []
        }
        fresh: list[str] = []
        for example in examples:
            cleaned = _normal(example)
            if cleaned and cleaned.lower() not in known:
                known.add(cleaned.lower())
                fresh.append(cleaned)
        if not fresh:
            raise FaqError("no new examples: each one is already in the FAQ")
        spec = intents.get(intent)
        created = spec is None
        if created:
            new_text, expected = _new_intent(text, data, intent, fresh, answer, category, title)
        else:
            if not isinstance(spec, dict):
                raise FaqError(f"intent {intent!r} is not a mapping in {file.name}")
            new_text = _append_examples(text, intent, fresh)
            new_spec = {**spec, "examples": [*(spec.get("examples") or []), *fresh]}
            if answer is not None:
                if spec.get("category") not in ANSWERED_CATEGORIES:
                    raise FaqError(f"intent {intent!r} is never answered automatically")
                new_text = replace_answer(new_text, intent, answer)
                new_spec["answer"] = answer
            expected = {**data, "intents": {**intents, intent: new_spec}}
        _write_checked(file, new_text, expected, f"the examples of {intent!r}")
    logger.info("FAQ: %d example(s) added to %s%s", len(fresh), intent, " (new)" if created else "")
    return FaqChange(text, tuple(fresh), created)


def _append_examples(text: str, intent: str, examples: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"  {intent}:"), None)
    if start is None:
        raise FaqError(f"no intent {intent!r} in the FAQ file")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > 2):
        end += 1
    key = next((i for i in range(start + 1, end) if lines[i].rstrip() == "    examples:"), None)
    if key is None:
        raise FaqError(f"intent {intent!r} has no block list of examples to extend")
    last = key
    for i in range(key + 1, end):
        if lines[i].startswith("      - "):
            last = i
        elif lines[i].strip() and _indent(lines[i]) <= 4:
            break
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    return "".join(lines[: last + 1] + _example_lines(examples) + lines[last + 1 :])


def _new_intent(
    text: str,
    data: dict[str, Any],
    intent: str,
    examples: list[str],
    answer: str | None,
    category: str | None,
    title: str | None,
) -> tuple[str, dict[str, Any]]:
    """The file's text with a new intent block after the last intent, and the data expected."""
    if category not in CATEGORIES:
        raise FaqError(f"a new intent needs a category, one of {sorted(CATEGORIES)}")
    if category in ANSWERED_CATEGORIES and not (answer and answer.strip()):
        raise FaqError(f"a new {category} intent needs an answer")
    if category not in ANSWERED_CATEGORIES and answer:
        raise FaqError(f"category {category!r} is never answered automatically: no answer")
    spec: dict[str, Any] = {"category": category}
    block = [f"  {intent}:\n", f"    category: {category}\n"]
    if title:
        if len(title.strip()) > MAX_TITLE:
            raise FaqError(f"the title must be at most {MAX_TITLE} characters")
        spec["title"] = title.strip()
        block.append(f"    title: {yaml.safe_dump(title.strip(), width=10**6).splitlines()[0]}\n")
    if answer:
        spec["answer"] = answer
        block += ["    answer: |\n"] + [
            f"      {line}\n" if line.strip() else "\n" for line in answer.rstrip("\n").split("\n")
        ]
    spec["examples"] = examples
    block += ["    examples:\n", *_example_lines(examples)]
    lines = text.splitlines(keepends=True)
    top = next((i for i, line in enumerate(lines) if line.rstrip() == "intents:"), None)
    if top is None:
        raise FaqError("no 'intents:' mapping at the top level of the FAQ file")
    end = top + 1
    while end < len(lines) and (
        not lines[end].strip() or lines[end].lstrip().startswith("#") or _indent(lines[end]) > 0
    ):
        end += 1
    while end > top + 1 and not lines[end - 1].strip():  # blank lines after the last intent
        end -= 1
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    new_text = "".join(lines[:end] + block + lines[end:])
    intents = {**(data.get("intents") or {}), intent: spec}
    return new_text, {**data, "intents": intents}


def restore_text(faq_path: Path, text: str) -> None:
    """Put the FAQ file back to ``text`` (e.g. :attr:`FaqChange.previous_text`), atomically."""
    with faq_lock(Path(faq_path)) as file:
        write_atomically(file, text)
