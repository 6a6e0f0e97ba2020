"""The one place where domain errors become HTTP status codes (and are documented as such)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from handoff.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TriageError
from handoff.text import storable

STATUS = {NotFound: 404, PermissionDenied: 403, Conflict: 409, InvalidInput: 422}


class ErrorOut(BaseModel):
    """The body of an error answer."""

    detail: str
    error: str | None = Field(
        None, description="the domain error (NotFound, PermissionDenied, Conflict, InvalidInput…)"
    )


class ValidationErrorOut(BaseModel):
    """A request that does not match the schema (FastAPI's own 422 body)."""

    detail: list[dict[str, Any]]


WHY = {
    400: "the body could not be read as JSON",
    401: "missing or invalid API token",
    403: "the caller's role does not allow this",
    404: "not found, or not visible to the caller",
    409: "the object changed under the caller, or is not in a state that allows this",
    422: "the request is invalid (its shape, or its content)",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route may answer.

    A 422 is either a request that does not match the schema (a list of problems) or content
    the service refused (``InvalidInput``: a message).
    """
    models: dict[int, Any] = {422: ErrorOut | ValidationErrorOut}
    return {code: {"model": models.get(code, ErrorOut), "description": WHY[code]} for code in codes}


ECHO_DEPTH = 4  # how much of a refused input a 422 repeats


def echo(value: Any, depth: int = 0) -> Any:
    """A refused input made safe to answer with: JSON-encodable, storable text, shallow.

    FastAPI's own 422 repeats the input as it came, which cannot be encoded when it holds a
    lone surrogate or NaN, or is nested hundreds deep — so the 422 became a 500.
    """
    if isinstance(value, str):
        return storable(value[:200])
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= ECHO_DEPTH:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:20]
        return {storable(str(k)[:200]): echo(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [echo(v, depth + 1) for v in value[:20]]
    return storable(str(value)[:200])


def _problem(error: Any) -> dict[str, Any]:
    problem = {
        "type": error.get("type"),
        "loc": [echo(part) for part in error.get("loc", ())],
        "msg": storable(str(error.get("msg", ""))),
    }
    if "input" in error:
        problem["input"] = echo(error["input"])
    if error.get("ctx"):
        problem["ctx"] = {
            str(k): echo(v if isinstance(v, int | float) else str(v))
            for k, v in error["ctx"].items()
        }
    return problem


def install(app: FastAPI) -> None:
    """Register the mapping of domain errors (and invalid requests) to JSON error responses."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        detail = storable(str(exc))
        return JSONResponse({"detail": detail, "error": type(exc).__name__}, status_code=status)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        return JSONResponse({"detail": [_problem(e) for e in errors]}, status_code=422)

    app.add_exception_handler(TriageError, handle)
    app.add_exception_handler(RequestValidationError, invalid)
