"""What the console accepts in its paths, query strings and forms.

* Ids in paths are 1 … 2**31-1 (the id columns are 32-bit integers): a larger one is refused
  with a 422 before any query, instead of overflowing the database driver (a 500).
* Text that no database can store — a NUL character (PostgreSQL refuses it in text), a lone
  surrogate — is refused with a 422 naming the field, before the route runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Request

from handoff.text import refuse_unstorable

MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def bounded_int(value: str) -> int | None:
    """A form field's whole number in 0 … ``MAX_ID``, or None."""
    text = value.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if number <= MAX_ID else None


async def refuse_unstorable_input(request: Request) -> None:
    """Dependency: 422 when a query parameter or form field cannot be stored."""
    fields: list[tuple[str, object]] = list(request.query_params.multi_items())
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            fields.extend((await request.form()).multi_items())
    for name, value in fields:
        if not isinstance(value, str):
            continue
        try:
            refuse_unstorable(value, f"the field {refuse_unstorable_name(name)!r}")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc


def refuse_unstorable_name(name: str) -> str:
    """A field's name made printable for the error message."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in name)
