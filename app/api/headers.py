"""Pure ASGI wrapper around the whole app: X-Request-ID on every response (404s and CORS
preflights included), plus the rate-limit / usage headers that authentication left in the
scope state. Per request it costs one header scan and, without an incoming id, 32 hex
digits of os.urandom (a uuid4's length; building the UUID object costs 5x as much)."""

from __future__ import annotations

import os
import re
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.api.access import EXTRA_HEADERS

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")


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
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
