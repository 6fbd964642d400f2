"""uvicorn's configuration, and the HTTP protocol that bounds what one connection may cost:
header bytes, time to send headers and body, idle time, and connections open at once.

uvicorn with httptools caps none of these (its `h11_max_incomplete_event_size` covers only
h11): a 2 MB header was parsed, a connection that sent nothing stayed open for ever, and a
slow-drip header or body held its socket as long as the client liked. The subclass below
adds the checks around httptools' parser; everything else is uvicorn's own code path."""

from __future__ import annotations

import asyncio
import sys
from asyncio import TimerHandle
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.config import ServerSettings, Settings


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into HttpParserCallbackError."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit, header and body deadlines,
    and a cap on open connections (the limits come from Settings.server)."""

    limits: ClassVar[ServerSettings] = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_seconds  # type: ignore[assignment]
        self._deadline: TimerHandle | None = None
        self._awaiting_headers = True  # no request has its headers complete yet
        self._awaiting_body = False  # a request's headers are complete, its body is not
        self._raw_header_bytes = 0  # bytes received while awaiting headers (may include body)
        self._header_bytes = 0  # request line and headers of the current request, as parsed
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "Too many open connections.")
            return
        # Closes a connection that never sends a request, not just slow ones.
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the header size and deadline checks (431 or 400 on a bad request)."""
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self._awaiting_headers:
            self._raw_header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._refuse(431, "Request header fields too large.")
            else:
                self.logger.warning("Invalid HTTP request received.")
                self._refuse(400, "Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # A deadline only for what this data left incomplete: most requests arrive whole, and
        # a timer armed and cancelled per request would cost every one of them.
        if self._awaiting_headers and self._raw_header_bytes:
            # httptools buffers a header until its end: refuse before one fills memory.
            if self._raw_header_bytes > self.limits.max_header_bytes:
                self._refuse(431, "Request header fields too large.")
            elif self._deadline is None:  # a request begun on a kept-alive connection
                self._arm(self.limits.header_timeout_seconds)
        elif self._awaiting_body and self._deadline is None:
            self._arm(self.limits.body_timeout_seconds)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge

    def on_headers_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = False
        self._awaiting_body = True
        self._raw_header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = True
        self._awaiting_body = False
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        """Headers or body not complete in time: 408 if the request had begun, then close."""
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._awaiting_body and cycle is not None:  # the body is late
            if not cycle.response_complete:
                # The app waits for the rest of the body: it now receives http.disconnect,
                # and whatever it sends is dropped.
                cycle.disconnected = True
                cycle.message_event.set()
            if cycle.response_started:  # it has answered (or begun to): nothing to add
                self.transport.close()
                return
        elif self._raw_header_bytes == 0:
            self.transport.close()  # nothing of a request arrived: no one to answer
            return
        self._refuse(408, "Request timed out.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer with a plain-text status and close the connection."""
        self._disarm()
        body = message.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()


def protocol_class(limits: ServerSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol with these limits (uvicorn builds protocols from a class and its config)."""
    return type("AvocetHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def server_config(settings: Settings, app: Any) -> uvicorn.Config:
    """uvicorn's config for the app: one worker, uvloop + httptools, our own proxy rule."""
    limits = settings.server
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=protocol_class(limits),
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is handled by our trusted-proxy rule
        timeout_graceful_shutdown=10,
        # The protocol refuses connection max + 1 at once; this caps running requests too
        # (uvicorn answers 503 from `limit` on, and counts the asking connection).
        limit_concurrency=limits.max_connections + 1,
        timeout_keep_alive=max(1, round(limits.keep_alive_seconds)),  # the protocol's is exact
    )
