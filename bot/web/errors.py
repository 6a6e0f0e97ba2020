"""The one place where domain errors become HTTP status codes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from handoff.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TriageError

STATUS = {NotFound: 404, PermissionDenied: 403, Conflict: 409, InvalidInput: 422}


def install(app: FastAPI) -> None:
    """Register the mapping of domain errors to JSON error responses."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    app.add_exception_handler(TriageError, handle)
