"""Every error the service answers has one shape:

    {"error": {"code": "<snake_case>", "message": "<what happened and what to do>"}}

(validation errors add ``"fields": [{"location": [...], "message": ...}]``).
``install_error_handlers`` makes FastAPI's own errors (validation, unknown
route, wrong method) and unexpected exceptions use it; an unexpected
exception answers 500 with a reference, never a traceback. A full disk
(SQLite's "database or disk is full", ``OSError`` ENOSPC or EDQUOT) is not
unexpected: it answers 507 ``insufficient_storage`` (``is_storage_full``).

``RequestBodyLimit`` refuses request bodies over a size limit with 413, from
the Content-Length header when there is one, and by counting the bytes as
they stream in otherwise.
"""
from __future__ import annotations

import errno
import logging
import sqlite3
import uuid
from typing import Callable

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("gan2x.service")

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}

STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class ApiError(HTTPException):
    """An error with a stable machine-readable ``code`` and a message a person can act on."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict | None = None):
        if status_code == 401:
            headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def _http_error(request, error: StarletteHTTPException) -> JSONResponse:
    if isinstance(error, ApiError):
        code, message = error.code, error.message
    else:
        code = CODES_BY_STATUS.get(error.status_code, "error")
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs for the API"
        elif error.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body could not be read: send JSON, UTF-8 encoded, with Content-Type: " \
                      "application/json"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
    return JSONResponse(error_body(code, message), status_code=error.status_code,
                        headers=getattr(error, "headers", None))


def _validation_error(request, error: RequestValidationError) -> JSONResponse:
    fields = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        message = item.get("msg", "invalid")
        if item.get("type") == "finite_number":  # NaN or infinity: say so, not "should be <= 2"
            message = "must be a finite number (not NaN or infinity)"
        fields.append({"location": location, "message": message})
    summary = "; ".join(f"{'.'.join(field['location']) or 'request'}: {field['message']}" for field in fields[:5])
    if len(fields) > 5:
        summary += f"; and {len(fields) - 5} more"
    return JSONResponse(error_body("invalid_request", f"the request is not valid: {summary}", fields=fields),
                        status_code=422)


def is_storage_full(error: BaseException) -> bool:
    """True for the ways a full disk (or an exhausted quota) shows: SQLite's
    SQLITE_FULL ("database or disk is full") and ``OSError`` ENOSPC / EDQUOT."""
    if isinstance(error, sqlite3.OperationalError):
        return "database or disk is full" in str(error)
    return isinstance(error, OSError) and error.errno in STORAGE_FULL_ERRNOS


def storage_full_body() -> dict:
    return error_body("insufficient_storage",
                      "the service's data directory is out of disk space (or quota), so the request could not be "
                      "completed. Free some space there (delete finished jobs: DELETE /v1/jobs/{id}) "
                      "and try again")


def _storage_or_unexpected_error(request, error: Exception) -> JSONResponse:
    if is_storage_full(error):
        log.error("%s %s: the data directory is full: %s", request.method, request.url.path, error)
        return JSONResponse(storage_full_body(), status_code=507)
    return _unexpected_error(request, error)


def _unexpected_error(request, error: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s %s", reference, request.method, request.url.path, exc_info=error)
    return JSONResponse(error_body("internal_error", f"the service failed unexpectedly (reference {reference}); "
                                   "the service's log has the details"), status_code=500)


def install_error_handlers(app) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Handled here, not by the catch-all below: these are answered and not re-raised to the server's log.
    app.add_exception_handler(sqlite3.OperationalError, _storage_or_unexpected_error)
    app.add_exception_handler(OSError, _storage_or_unexpected_error)
    app.add_exception_handler(Exception, _unexpected_error)


def too_large_error(limit_bytes: int, what: str) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"{what} is larger than this service's limit of {_size(limit_bytes)} ({limit_bytes} bytes)")


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB" if count >= 1024 * 1024 else f"{count / 1024:.1f} KiB"


class RequestBodyLimit:
    """ASGI middleware: a request body larger than ``limit_for(path)`` bytes
    gets 413 before it is read (Content-Length) or as soon as it passes the
    limit (streamed bodies)."""

    def __init__(self, app, limit_for: Callable[[str], tuple[int, str]]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit_for(scope["path"])
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            error = too_large_error(limit, what)
            response = JSONResponse(error_body(error.code, error.message), status_code=413,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large_error(limit, what)
            return message

        await self.app(scope, receive_within_limit, send)
