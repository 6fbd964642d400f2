"""The tracking script, served by the app itself at every path a snippet may use.

It is compressed once, at first use (brotli and gzip, best settings: 2.5 KB takes about
10 ms), and each request gets the smallest representation its Accept-Encoding allows, with
its own ETag, so a cache that stored the gzip copy never revalidates into the brotli one."""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import brotli
from litestar import Request, Response, route
from litestar.enums import HttpMethod

from app.errors import NotFound

SCRIPT = Path(__file__).resolve().parents[2] / "static" / "script.js"
# Browsers revalidate after an hour: a new release reaches every page within one, and the
# ETag makes the revalidation a 304.
CACHE_CONTROL = "public, max-age=3600, must-revalidate"
# Preferred first when the client accepts several (brotli is ~15 % smaller than gzip here).
CODINGS = ("br", "gzip")


class Representation(NamedTuple):
    body: bytes
    etag: str
    coding: str | None  # Content-Encoding; None = identity


@cache
def representations() -> dict[str | None, Representation]:
    """The script as sent: identity, gzip and brotli, each with its ETag."""
    try:
        body = SCRIPT.read_bytes()
    except OSError as exc:
        raise NotFound("the tracking script is not built (run scripts/build-tracker)") from exc
    tag = hashlib.sha256(body).hexdigest()[:32]
    # mtime=0: the same bytes on every start, so the gzip ETag holds across restarts.
    packed: dict[str, bytes] = {
        "br": brotli.compress(body, quality=11),
        "gzip": gzip.compress(body, compresslevel=9, mtime=0),
    }
    found: dict[str | None, Representation] = {None: Representation(body, f'"{tag}"', None)}
    for coding in CODINGS:
        found[coding] = Representation(packed[coding], f'"{tag}-{coding}"', coding)
    return found


def accepted_codings(header: str) -> set[str]:
    """The content codings an Accept-Encoding value allows (q=0 refuses; * means any)."""
    allowed: set[str] = set()
    refused: set[str] = set()
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        (allowed if quality > 0 else refused).add(name)
    if "*" in allowed:
        allowed |= set(CODINGS) - refused
    return allowed - refused


def choose(accept_encoding: str) -> Representation:
    """The smallest representation the client accepts (identity when it accepts none)."""
    found = representations()
    allowed = accepted_codings(accept_encoding)
    for coding in CODINGS:
        if coding in allowed:
            return found[coding]
    return found[None]


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@route(
    ["/script.js", "/js/script.js", "/z.js"],
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    include_in_schema=False,
)
async def tracker_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The minified tracker; 304 when the browser's copy is current; HEAD: headers only."""
    return script_response(request, choose(request.headers.get("accept-encoding", "")))


def script_response(request: Request[Any, Any, Any], chosen: Representation) -> Response[bytes]:
    """One representation of a tracker script as the answer: cacheable, loadable from any
    origin, 304 when the browser's copy is current, headers only for HEAD."""
    headers = {
        "ETag": chosen.etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match", ""), chosen.etag):
        return Response(b"", status_code=304, headers=headers)
    if chosen.coding:
        headers["Content-Encoding"] = chosen.coding
    body = chosen.body
    if request.method == HttpMethod.HEAD:
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


ROUTES = [tracker_script]
