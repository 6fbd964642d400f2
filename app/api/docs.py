"""The OpenAPI 3.1 document of every route, at the path OpenAnalytics' clients expect.

Litestar documents its own error body ({status_code, detail}); ours differ per surface
(app/errors.py), so every error response is rewritten here to the envelope really sent."""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar import Litestar, Request, get

_STRING = {"type": "string"}
NATIVE_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": _STRING, "message": _STRING},
        }
    },
}
PLAUSIBLE_EVENT_ERROR = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "object", "additionalProperties": {"type": "array"}}},
}
PLAUSIBLE_QUERY_ERROR = {"type": "object", "required": ["error"], "properties": {"error": _STRING}}
OPENANALYTICS_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": _STRING, "message": _STRING},
}

ZENOVAY_ERROR = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {
            "type": "object",
            "required": ["message", "code", "timestamp"],
            "properties": {"message": _STRING, "code": _STRING, "timestamp": _STRING},
        },
    },
}


def error_schema(path: str) -> dict[str, Any]:
    """The error body a path answers with (mirrors app.errors._envelope)."""
    if path == "/api/event":
        return PLAUSIBLE_EVENT_ERROR
    if path == "/api/v2/query":
        return PLAUSIBLE_QUERY_ERROR
    if path.startswith("/v1/projects"):
        return OPENANALYTICS_ERROR
    if path.startswith("/api/external/"):
        return ZENOVAY_ERROR
    return NATIVE_ERROR


# What each error status means, as the documents' descriptions say it.
DESCRIPTIONS = {
    400: "Invalid request: a parameter or the body is wrong (the message names it)",
    401: "No valid credential (API key, JWT or signed-in session)",
    403: "The credential lacks the scope, the role or the site this needs",
    404: "No such site (or other named resource) for this credential",
    409: "Conflict: it exists already, or the instance is set up already",
    413: "The body is over the size limit",
    422: "A valid query this server can't answer (e.g. hourly data past the raw window)",
    429: "Rate limit exceeded; Retry-After says when to try again",
    503: "The event could not be stored; retry later",
}

# Answer with their one success status whatever happened: a tracker must never see an
# error (hits are dropped and counted instead), and health / live counts need no input.
SILENT = {"/collect", "/e/{site_id}", "/e/heartbeat/{site_id}", "/e/live/{site_id}", "/api/health"}
# No credential needed: sign-in itself (401 on a wrong password, 403 cross-site, 429 past the
# attempt limits) and Plausible's Events API (public, rate limited per IP and site).
PUBLIC = {
    "/api/v1/auth/login": {400, 401, 403, 429},
    "/api/v1/auth/token": {400, 401, 403, 429},
    "/api/v1/auth/setup": {400, 403, 409},
    "/api/event": {400, 429, 503},
}
# Authenticated routes that name no site, so no 404 (lists and the caller's own things).
NO_SITE = {
    "/api/v1/auth/logout",
    "/api/v1/auth/token/revoke",
    "/api/v1/auth/me",
    "/api/v1/sites",
    "/api/v1/usage",
    "/api/v1/admin/backup",
    "/v1/projects",
    "/api/external/v1/websites",
    "/api/external/v1/usage",
}
# Statuses the rules below can't see from the document, by (method, path).
EXTRA: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/sites/{site_id}/goals"): {409},  # the goal exists
    ("post", "/api/v2/query"): {400, 404, 413, 422},  # reads its own body: 404 = site
    ("post", "/api/v1/events"): {400, 404, 503},  # the body names the site
    ("post", "/api/v1/pageviews"): {400, 404, 503},
    ("post", "/api/v1/events/purchase"): {400, 404, 503},
    ("post", "/v1/projects/{project_id}/events"): {503},
}
# Stats queries: a well-formed question may still be one we can't answer (422).
STATS_PREFIXES = (
    "/api/v1/stats",
    "/api/v1/analytics",
    "/v1/projects/",
    "/api/external/v1/analytics",
)


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """Every error status this operation can answer: the rules of our routes, in one place
    (tests/test_schemathesis.py checks them against what the running server answers)."""
    if path in SILENT:
        return set()
    found = set(PUBLIC.get(path, {401, 403, 429}))
    params = operation.get("parameters", [])
    if params or "requestBody" in operation:
        found.add(400)
    if "requestBody" in operation:
        found.add(413)  # Litestar's request_max_body_size, before the handler runs
    names_site = any(p.get("in") == "path" or p.get("name") == "site_id" for p in params)
    if path not in PUBLIC and path not in NO_SITE and names_site:
        found.add(404)
    if path.startswith(STATS_PREFIXES) and method == "get":
        found.add(422)
    return found | EXTRA.get((method, path), set())


def with_error_envelopes(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's error statuses (and only those), each with its surface's envelope."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in [c for c in responses if c[0] in "45"]:
                del responses[code]  # Litestar's guesses: a 400 on every route with parameters
            for status in sorted(error_statuses(method, path, operation)):
                responses[str(status)] = {
                    "description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": error_schema(path)}},
                }
    return document


@cache
def _document(app: Litestar) -> dict[str, Any]:
    return with_error_envelopes(app.openapi_schema.to_schema())


@get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _document(request.app)


ROUTES = [openapi_json]
