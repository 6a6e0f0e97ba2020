"""The one place where domain errors become HTTP status codes (and are documented as such)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from handoff.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TriageError

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


def install(app: FastAPI) -> None:
    """Register the mapping of domain errors to JSON error responses."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    app.add_exception_handler(TriageError, handle)
