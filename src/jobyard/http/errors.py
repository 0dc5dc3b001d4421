"""UCloud's error body ``{"why": ..., "errorCode": ...}`` for everything the face refuses.

Statuses come from the one mapping in :mod:`jobyard.api.errors`; a request that does not
parse or validate is a 400 naming the bad field, and an unexpected error a 500 that says
only which request failed (the trace goes to the server's log, never to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from jobyard.api.errors import http_status_for, public_message
from jobyard.domain.errors import JobyardError

log = logging.getLogger("jobyard.http")

MAX_WHY_CHARS = 1000
_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE",
               415: "UNSUPPORTED_MEDIA_TYPE"}  # fmt: skip


def error_body(why: str, error_code: str) -> dict[str, str]:
    return {"why": why[:MAX_WHY_CHARS], "errorCode": error_code}


def error_response(status: int, why: str, error_code: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(why, error_code), status_code=status, headers=headers)


def for_exception(exc: JobyardError) -> JSONResponse:
    status, code = http_status_for(exc)
    if status >= 500:
        return error_response(500, "internal error", "INTERNAL")
    return error_response(status, public_message(exc), code)


def validation_why(errors: Any) -> str:
    """``invalid request: items.0.replicas: Input should be ...`` (the first few)."""
    parts = []
    for error in list(errors)[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            message = "malformed JSON"
        parts.append(f"{where}: {message}" if where else message)
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every refusal into UCloud's error body."""

    @app.exception_handler(JobyardError)
    async def _domain(request: Request, exc: JobyardError) -> JSONResponse:
        response = for_exception(exc)
        # Refused credentials and roles are worth an operator's look; bad input is not.
        level = logging.WARNING if response.status_code in (401, 403) else logging.DEBUG
        log.log(level, "request refused | path=%s status=%d error=%s",
                request.url.path, response.status_code, public_message(exc))  # fmt: skip
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_why(exc.errors()), "INVALID_ARGUMENT")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return error_response(exc.status_code, str(exc.detail), code)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed | method=%s path=%s", request.method, request.url.path)
        return error_response(500, f"internal error during {request.url.path}", "INTERNAL")
