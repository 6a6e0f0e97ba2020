"""Making customer text safe to store on every database.

PostgreSQL refuses NUL characters in text and JSON, and no UTF-8 database can hold a lone
surrogate (``"\\ud800"``, which JSON escapes can produce). Both are replaced by U+FFFD so the
message is kept, legibly, instead of failing the whole transaction.
"""

from __future__ import annotations

import re
from typing import Any

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
