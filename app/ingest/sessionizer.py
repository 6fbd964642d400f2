"""A sessionizer (`avocet sessionizer`, issue #24): the session owner of the visitors that
hash to it. It takes collectors' rows, finds or starts each visitor's session (ids by
session_hash, so no node shares a counter), group-commits, and answers after the commit.

Where it commits: straight into ClickHouse over http(s), or, when the store is chdb
(embedded: one process owns its folder), to the control plane, which inserts each batch
under the batch's token. Either way a batch retried after an unclear failure is inserted
once: ClickHouse keeps the tokens of the last 10,000 inserts."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.config import Settings
from app.ingest import wire
from app.ingest.identity import Sessions
from app.storage.events import Row

log = logging.getLogger("avocet.sessionizer")

APPEND_ATTEMPTS = 6  # over ~6 s: a control plane restarting within that loses nothing
RETRIED = frozenset({500, 502, 503, 504})


class Sessionizer:
    """Sessions of the visitors this node owns."""

    def __init__(self) -> None:
        self.sessions = Sessions(hashed=True)

    def sessionize(self, row: Sequence[Any]) -> Row | None:
        """The row with its visit's session id and attributes; None for an engagement ping
        of a visit this node doesn't know (dropped, as on a single node)."""
        site_id, ts_us, visitor = row[0], row[1], row[4]
        session = self.sessions.find(site_id, visitor, ts_us)
        if session is None:
            if row[3] == "engagement":
                return None
            attrs = tuple(row[wire.ATTRS_START : wire.ATTRS_END])
            session = self.sessions.start(site_id, visitor, ts_us, attrs)
        return (
            *row[: wire.SESSION_AT],
            session.id,
            *row[wire.SESSION_AT + 1 : wire.ATTRS_START],
            *session.attrs,
            *row[wire.ATTRS_END :],
        )

    def restore(self, rows: Iterable[Sequence[Any]], owned: tuple[int, int] | None = None) -> int:
        """Open sessions from the store: (site, visitor, session, ts µs, *visit attrs).
        owned: (this node's position, sessionizers): only the visitors it owns (the others'
        hits go to their owners); None: all. Returns how many were restored."""
        if owned is not None:
            mine, of = owned
            rows = [r for r in rows if wire.owner_of(r[0], r[1], of) == mine]
        else:
            rows = list(rows)
        self.sessions.restore((r[0], r[1], r[2], _naive(r[3]), tuple(r[4:])) for r in rows)
        return len(rows)


def own_position(settings: Settings) -> int | None:
    """This sessionizer's place in [cluster] sessionizers (the collectors' list of owners):
    the one entry with this node's port whose host is an address of this machine (one it
    can bind). None when no entry or several match (behind a proxy that changes the port,
    say): then it restores every visitor's open sessions."""
    found = []
    for position, url in enumerate(settings.cluster.sessionizers):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if port == settings.port and parts.hostname and _is_this_machine(parts.hostname):
            found.append(position)
    return found[0] if len(found) == 1 else None


def _is_this_machine(host: str) -> bool:
    try:
        addresses = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for family, _, _, _, address in addresses:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address[0], 0))
            return True
        except OSError:
            continue
    return False


def _naive(ts_us: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=ts_us)


class RemoteStore:
    """The control plane's store, as a sessionizer's writer commits to it (in the writer's
    thread: a blocking client)."""

    engine = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self._url = settings.cluster.control_url.rstrip("/") + wire.PREFIX
        self._client = httpx.Client(
            headers=wire.bearer(settings.cluster.secret), timeout=httpx.Timeout(60.0, connect=2.0)
        )

    def append(
        self,
        rows: Sequence[Row],
        bot_hits: Iterable[tuple[str, int, int]] = (),
        excluded: Iterable[tuple[str, int, str, int]] = (),
    ) -> None:
        """Durable in the store when it returns; retried with the same token (so inserted
        once) while the control plane is unreachable or failing, then raises."""
        body = wire.encode(
            wire.Append(uuid.uuid4().hex, list(rows), list(bot_hits), list(excluded))
        )
        for attempt in range(APPEND_ATTEMPTS):
            try:
                response = self._client.post(f"{self._url}/append", content=body)
                if response.status_code not in RETRIED:
                    response.raise_for_status()  # 4xx, 501: no retry makes it right
                    return
                problem = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
            if attempt == APPEND_ATTEMPTS - 1:
                raise RuntimeError(f"the control plane did not commit the batch: {problem}")
            log.warning("append to the control plane failed (%s); retrying", problem)
            time.sleep(0.2 * 2**attempt)

    def open_sessions(self, since: datetime) -> list[tuple[Any, ...]]:
        """Each visitor's newest event since `since`, for Sessionizer.restore."""
        since_us = int(since.replace(tzinfo=UTC).timestamp() * 1_000_000)
        response = self._client.get(f"{self._url}/open-sessions", params={"since": since_us})
        response.raise_for_status()
        return wire.open_sessions_decoder.decode(response.content)

    def close(self) -> None:
        self._client.close()
