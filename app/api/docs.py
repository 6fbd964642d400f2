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


def with_error_envelopes(document: dict[str, Any]) -> dict[str, Any]:
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            errors = [code for code in responses if code[0] in "45"] or ["4XX"]
            for code in errors:
                responses[code] = {
                    "description": responses.get(code, {}).get("description", "Error"),
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
