"""Edit an FAQ answer in ``intents.yaml`` without a redeploy.

Only the answer text changes: the examples (and so the model's data hash,
``classifier.train.faq_data_hash``) stay the same, so no retraining is needed. The new answer
is checked first (sandboxed Jinja2: it must parse and render with sample values), then the
whole file is re-validated with :func:`classifier.faq.load_faq` before it atomically replaces
the old one (temp file in the same folder + ``os.replace``). YAML comments inside the file are
not kept; the header comment block is.
"""

from __future__ import annotations

import logging
import os
import re
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


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks and indented lists, as the file is written by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


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


def dump_yaml(data: Any, header: str = "") -> str:
    """``data`` as YAML (insertion order, unicode, width 100) after ``header``."""
    body = yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)
    if header and not header.endswith("\n"):
        header += "\n"
    return header + body


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
    return answer + "\n"


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
        spec["answer"] = checked
        new_text = dump_yaml(data, header_comment(text))
        new_text = re.sub(r"(?<!intents:)\n(  [A-Za-z0-9_]+:\n)", r"\n\n\1", new_text)
        probe = file.with_name(f".{file.name}.check")
        try:
            probe.write_text(new_text, encoding="utf-8")
            load_faq(probe)  # the whole file must still load as the bot will load it
        finally:
            probe.unlink(missing_ok=True)
        write_atomically(file, new_text)
    logger.info("FAQ answer of %s changed", intent)
