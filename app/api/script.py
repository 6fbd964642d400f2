"""The tracking script, served by the app itself at every path a snippet may use."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get

from app.errors import NotFound

SCRIPT = Path(__file__).resolve().parents[2] / "static" / "script.js"
# Browsers revalidate after an hour: a new release reaches every page within one, and the
# ETag makes the revalidation a 304.
CACHE_CONTROL = "public, max-age=3600, must-revalidate"


@cache
def _script() -> tuple[bytes, str]:
    try:
        body = SCRIPT.read_bytes()
    except OSError as exc:
        raise NotFound("the tracking script is not built (run scripts/build-tracker)") from exc
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@get(["/script.js", "/js/script.js", "/z.js"], include_in_schema=False)
async def tracker_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The minified tracker; 304 when the browser's copy is current."""
    body, etag = _script()
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


ROUTES = [tracker_script]
