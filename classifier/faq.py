"""The bundled FAQ: intents, their category, answer template and training examples.

The file format is documented in ``data/faq/README.md``. Loading validates everything a
model or the bot relies on, and reports every problem at once with its location.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

Category = Literal["faq", "strategic", "human", "smalltalk", "out_of_scope"]
CATEGORIES: frozenset[str] = frozenset({"faq", "strategic", "human", "smalltalk", "out_of_scope"})
ANSWERED_CATEGORIES: frozenset[str] = frozenset({"faq", "smalltalk"})
FAQ_FILE = "intents.yaml"
MAX_TITLE = 20  # a title is a button label: WhatsApp cuts reply button titles at 20


class FaqError(ValueError):
    """The FAQ file is malformed; the message lists every problem found."""


@dataclass(frozen=True)
class IntentSpec:
    name: str
    category: Category
    examples: tuple[str, ...]
    answer: str | None = None
    description: str = ""
    title: str = ""
    """A short label for people ("Password reset"), e.g. on a "did you mean ...?" button."""

    @property
    def auto_answer(self) -> bool:
        return self.category in ANSWERED_CATEGORIES

    @property
    def display_title(self) -> str:
        """The ``title``, or one made from the name (``password_reset`` -> "Password reset")."""
        return self.title or title_from_name(self.name)


def title_from_name(name: str) -> str:
    """``password_reset`` -> ``Password reset`` (cut to :data:`MAX_TITLE` characters)."""
    words = " ".join(name.replace("_", " ").split())
    title = words[:1].upper() + words[1:]
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"


@dataclass(frozen=True)
class Faq:
    intents: dict[str, IntentSpec]
    source: Path | None = None
    version: int = 1
    _order: tuple[str, ...] = field(default=(), repr=False)

    def training_data(self) -> tuple[list[str], list[str]]:
        """Texts and labels for ``IntentClassifier.fit`` (out-of-scope labelled as such)."""
        texts: list[str] = []
        labels: list[str] = []
        for spec in self.intents.values():
            for example in spec.examples:
                texts.append(example)
                labels.append(spec.name)
        return texts, labels

    def __iter__(self) -> Iterator[IntentSpec]:
        return iter(self.intents.values())


def faq_file(path: Path) -> Path:
    """``data/faq`` or ``data/faq/intents.yaml`` -> the YAML file."""
    path = Path(path)
    return path / FAQ_FILE if path.is_dir() else path


def load_faq(path: Path | str) -> Faq:
    """Load and validate the FAQ; raises :class:`FaqError` listing every problem."""
    file = faq_file(Path(path))
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FaqError(f"FAQ file not found: {file}") from exc
    except yaml.YAMLError as exc:
        raise FaqError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict):
        raise FaqError(f"{file}: expected a mapping with an 'intents' mapping")
    env = SandboxedEnvironment()
    problems: list[str] = []
    intents: dict[str, IntentSpec] = {}
    owner: dict[str, str] = {}
    for name, spec in raw["intents"].items():
        where = f"{file.name}: intent {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        category = spec.get("category")
        if category not in CATEGORIES:
            problems.append(f"{where}: category must be one of {sorted(CATEGORIES)}")
            continue
        answer = spec.get("answer")
        if category in ANSWERED_CATEGORIES:
            if not isinstance(answer, str) or not answer.strip():
                problems.append(f"{where}: category {category!r} needs an answer")
            else:
                try:
                    env.parse(answer)
                except TemplateSyntaxError as exc:
                    problems.append(f"{where}: answer template line {exc.lineno}: {exc.message}")
        elif answer:
            problems.append(f"{where}: category {category!r} is never auto-answered; drop 'answer'")
        title = spec.get("title")
        if title is not None and (
            not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_TITLE
        ):
            problems.append(f"{where}: title must be 1-{MAX_TITLE} characters")
            title = None
        examples = spec.get("examples") or []
        if not isinstance(examples, list) or len(examples) < 2:
            problems.append(f"{where}: needs a list of at least 2 examples")
            continue
        cleaned: list[str] = []
        for example in examples:
            text = " ".join(str(example).split())
            if not text:
                continue
            key = text.lower()
            if key in owner and owner[key] != name:
                problems.append(f"{where}: example {text!r} is also under {owner[key]!r}")
            owner[key] = name
            cleaned.append(text)
        intents[name] = IntentSpec(
            name=name,
            category=category,
            examples=tuple(cleaned),
            answer=answer if category in ANSWERED_CATEGORIES else None,
            description=str(spec.get("description") or ""),
            title=title.strip() if isinstance(title, str) else "",
        )
    if len(intents) < 2 and not problems:
        problems.append(f"{file.name}: needs at least 2 intents")
    if problems:
        raise FaqError("invalid FAQ:\n  " + "\n  ".join(problems))
    return Faq(intents=intents, source=file, version=int(raw.get("version", 1)))
