"""Making customer text safe to store on every database.

PostgreSQL refuses NUL characters in text and JSON, and no UTF-8 database can hold a lone
surrogate (``"\\ud800"``, which JSON escapes can produce). What a customer sends is kept,
legibly: both are replaced by U+FFFD instead of failing the whole transaction. What staff and
integrations send (API bodies, ids, CSV rows) is refused instead, with a validation error.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL characters and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable_json(value: Any) -> Any:
    """The same, applied to every string (keys too) of a JSON-like value."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_json(v) for v in value]
    return value


MAX_DEPTH = 32  # nesting of lists and objects in a JSON value we accept from outside


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in ``value`` (counting stops just past ``limit``).

    Iterative, so a value nested thousands deep costs no recursion.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def refuse_too_deep(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value`` unchanged; ValueError if lists and objects nest deeper than ``limit``."""
    if depth_of(value, limit) > limit:
        raise ValueError(f"the value is nested more than {limit} levels deep")
    return value


def refuse_unstorable(value: Any, where: str = "") -> Any:
    """``value`` unchanged; ValueError if a string in it (keys too) cannot be stored."""
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise ValueError(
            f"{where or 'the text'} contains a NUL character or a lone surrogate,"
            " which cannot be stored"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            refuse_unstorable(key, f"a key of {where}" if where else "a key")
            refuse_unstorable(item, name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_unstorable(item, f"{where}[{index}]")
    return value


class StorableInput(BaseModel):
    """An input model whose values, anywhere in it, can be stored on every database and read
    back: no NUL or lone surrogate in strings, no NaN or infinity in numbers, no nesting
    deeper than ``MAX_DEPTH``."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unstorable(cls, data: Any) -> Any:
        return refuse_unstorable(refuse_too_deep(data))


# Personal data that must not become a training example: e-mail addresses, phone numbers and
# long digit runs (account, card, order numbers), each replaced by a placeholder.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w(])\(?\+?\d[\d ().-]{6,}\d(?![\w])")
_DIGITS = re.compile(r"\d{6,}")


def mask_personal_data(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers (7+ digits with separators) and runs of
    6+ digits replaced by ``[email]``, ``[phone]`` and ``[number]``."""
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub(_phone, text)
    return _DIGITS.sub("[number]", text)


# A date ("2024-05-01", "01.05.2024", "1/5/2024") is not personal data by itself and says what
# a question is about: kept.
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    if _DATE.fullmatch(found.strip()):
        return found
    looks_like_phone = sum(ch.isdigit() for ch in found) >= 7 and not found.isdigit()
    return "[phone]" if looks_like_phone else found
