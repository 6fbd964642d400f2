"""One-time values a form hands to the page it redirects to (post/redirect/get).

A new API key's token, an invitation link and recovery codes are shown once and never
stored: the POST keeps the value here, in this process's memory, under a random id bound
to the signed-in session, and redirects to a page whose URL carries only that id. The GET
takes it (once); a reload shows the page without it, and re-submits nothing."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from app.ui.web import AnyRequest, Viewer

TTL_SECONDS = 600
# Bounded: a session posting forms in a loop can't grow the process's memory.
MAX_ENTRIES = 1000


class Flash:
    def __init__(self, ttl: float = TTL_SECONDS, limit: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._limit = limit
        self._items: OrderedDict[str, tuple[bytes, float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session_token: str, value: Any) -> str:
        """Keep `value` for the session holding `session_token`; the id for the next URL."""
        shown = secrets.token_urlsafe(12)
        with self._lock:
            self._items[shown] = (_digest(session_token), time.monotonic() + self._ttl, value)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)
        return shown

    def take(self, session_token: str, shown: str) -> Any | None:
        """The value kept under `shown` for this session, once; None when unknown, taken,
        expired or another session's."""
        with self._lock:
            found = self._items.get(shown)
            if found is None or not secrets.compare_digest(found[0], _digest(session_token)):
                return None
            del self._items[shown]
        return found[2] if found[1] > time.monotonic() else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _store(request: AnyRequest) -> Flash:
    state = request.app.state
    found = state.get("flash")
    if found is None:
        found = state.flash = Flash()
    return found


def keep(request: AnyRequest, viewer: Viewer, value: Any) -> str:
    """Keep a one-time value for the viewer's next page; returns its id (?shown=ID)."""
    return _store(request).put(viewer.session_token, value)


def taken(request: AnyRequest, viewer: Viewer) -> Any | None:
    """The one-time value named by this page's ?shown=ID, if it is the viewer's."""
    shown = request.query_params.get("shown", "")
    return _store(request).take(viewer.session_token, shown) if shown else None
