"""Pure ASGI wrapper around the whole app: X-Request-ID on every response (404s and CORS
preflights included), the rate-limit / usage headers that authentication left in the
scope state, and a strict CSP + anti-framing headers on every HTML page. Per request it
costs one header scan and, without an incoming id, 32 hex digits of os.urandom (a uuid4's
length; building the UUID object costs 5x as much)."""

from __future__ import annotations

import os
import re
from typing import Any

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.api.access import EXTRA_HEADERS

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")

# Every HTML page: scripts and styles only from our own files (no inline script), never framed.
# A page that must be framed (the dashboard's embed) sends its own CSP, which wins.
PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = (
    (b"content-security-policy", PAGE_CSP),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)

# Every route may be called from any page: the tracker from sites, the API from dashboards.
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
    allow_headers=["*"],
    expose_headers=[
        "X-Request-ID",
        "X-Plausible-Dropped",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
        "X-Usage-Monthly",
        "X-Usage-Limit",
        "X-Usage-Reset",
    ],
    max_age=86400,
)


def page_headers(headers: list[Any]) -> None:
    """Adds the page security headers to an HTML response that set no CSP of its own."""
    is_html = own_csp = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-type":
            is_html = value.startswith(b"text/html")
        elif lowered == b"content-security-policy":
            own_csp = True
    if is_html and not own_csp:
        headers.extend(_PAGE_HEADERS)
    elif is_html:
        headers.extend(_PAGE_HEADERS[2:])


def request_id(scope: Scope) -> bytes:
    """The client's X-Request-ID when it is sane, else a new random one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value if _VALID_ID.match(value) else os.urandom(16).hex().encode()
    return os.urandom(16).hex().encode()


class ResponseHeaders:
    """Adds X-Request-ID (echoed when the client sent a sane one) and our extra headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                headers.append((b"x-request-id", rid))
                headers.extend(scope.get("state", {}).get(EXTRA_HEADERS, ()))
                page_headers(headers)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
