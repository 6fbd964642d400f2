"""Domain errors and the one place that turns them into HTTP responses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

log = logging.getLogger("avocet")


class AppError(Exception):
    """Base of every error a client may see; `code` and `status` pick the envelope."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(AppError):
    status = 400
    code = "invalid_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class UnsupportedQuery(AppError):
    status = 422
    code = "unsupported_query"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str = "rate limit exceeded", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(AppError):
    status = 503
    code = "unavailable"


class NotOnThisStorage(AppError):
    """A feature the configured events store doesn't have (issue #24): the internal API of
    collectors and sessionizers needs storage = "clickhouse"; a DuckDB-only step given
    another store."""

    status = 501
    code = "not_available"


class EventInvalid(InvalidRequest):
    """An event body that the Plausible Events API answers with 400 {"errors": {field: [..]}}."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


# What a msgspec JSON decoder raises on a body that is not usable JSON: DecodeError (and its
# ValidationError), UnicodeDecodeError on invalid UTF-8 inside a string, RecursionError on
# nesting deeper than Python's recursion limit (~1,000). Every decode of a request body
# catches all three; the last two are not DecodeErrors.
JSON_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    405: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    422: "unsupported_query",
    429: "rate_limited",
}


# Zenovay's upper-case error codes, by our code (anything else: upper-cased).
_ZENOVAY_CODES = {
    "invalid_request": "VALIDATION_ERROR",
    "unauthorized": "UNAUTHORIZED",
    "forbidden": "FORBIDDEN",
    "not_found": "NOT_FOUND",
    "rate_limited": "RATE_LIMIT_EXCEEDED",
    "internal_error": "INTERNAL_ERROR",
}


def _zenovay_error(code: str, message: str) -> dict[str, object]:
    """Zenovay's External API: {"success": false, "error": {message, code, timestamp}}."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    zenovay_code = _ZENOVAY_CODES.get(code, code.upper())
    return {"success": False, "error": {"message": message, "code": zenovay_code, "timestamp": now}}


def _envelope(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    extra: dict[str, str] | None = None,
) -> Response[object]:
    headers: dict[str, str] = dict(extra or {})
    if status == 429:
        headers["Cache-Control"] = "no-store"
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="avocet"'
    path = request.url.path
    if path == "/api/event":  # Plausible's Events API has its own error shape
        return Response({"errors": {"request": [message]}}, status_code=status, headers=headers)
    body: dict[str, object]
    if path == "/v1/projects" or path.startswith("/v1/projects/"):
        body = {"error": code, "message": message}  # OpenAnalytics
    elif path.startswith("/api/external/"):
        body = _zenovay_error(code, message)
    elif path == "/api/v2/query" or _under_plausible_root(request, path):
        body = {"error": message}  # Plausible's APIs (v2, and its root's unmatched paths)
    else:
        body = {"error": {"code": code, "message": message}}
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _under_plausible_root(request: Request[Any, Any, Any], path: str) -> bool:
    """A path under plausible_base_path (set on the app's state by create_app)."""
    base = request.app.state.get("plausible_base", "")
    return bool(base) and path.startswith(base + "/")


def _is_ui(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith(("/ui/", "/share/"))


def _html_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The settings UI's pages answer errors with a page; a lost session signs in again."""
    if isinstance(exc, AppError):
        status, message = exc.status, exc.message
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        message = exc.detail if status < 500 else "Something went wrong on our side."
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, message = 500, "Something went wrong on our side."
    if status == 401 and request.method == "GET":
        query = urlencode({"next": request.url.path})
        return Redirect(f"/ui/login?{query}", status_code=303)
    if status == 401:
        message = "Your session has ended. Sign in again, then repeat what you did."
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    context = {"status": status, "message": message, "user": None, "path": request.url.path}
    return Template("error.html", context=context, status_code=status, headers=headers)


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one exception handler: domain errors and HTTP errors to the JSON envelope, or to
    an HTML page for the settings UI."""
    if _is_ui(request.url.path):
        return _html_error(request, exc)
    if isinstance(exc, EventInvalid) and request.url.path == "/api/event":
        return Response({"errors": {exc.field: [exc.detail]}}, status_code=400)
    if isinstance(exc, RateLimited):
        extra = {"Retry-After": str(exc.retry_after)}
        return _envelope(request, exc.status, exc.code, exc.message, extra)
    if isinstance(exc, AppError):
        return _envelope(request, exc.status, exc.code, exc.message)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = _HTTP_CODES.get(status, "internal_error" if status >= 500 else "invalid_request")
        message = exc.detail if status < 500 else "internal error"
        return _envelope(request, status, code, message)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _envelope(request, 500, "internal_error", "internal error")
