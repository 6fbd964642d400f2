"""Who is who, without cookies: daily salts, visitor ids, and the in-memory session table."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from app.storage.meta import MetaStore

SESSION_TIMEOUT_US = 30 * 60 * 1_000_000
_EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    return (day - _EPOCH).days


def day_from_number(number: int) -> date:
    return _EPOCH + timedelta(days=number)


def _to_int64(digest: bytes) -> int:
    return int.from_bytes(digest, "big", signed=True)


def visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> int:
    """64-bit keyed hash: the same person is the same visitor on one site for one day only."""
    material = f"{site_id}\x00{ip}\x00{user_agent}".encode()
    return _to_int64(hashlib.blake2b(material, digest_size=8, key=salt).digest())


def user_visitor_id(salt: bytes, site_id: str, user_id: str) -> int:
    """Visitor id for a server-side event that names its user (same daily salt)."""
    material = f"{site_id}\x00user\x00{user_id}".encode()
    return _to_int64(hashlib.blake2b(material, digest_size=8, key=salt).digest())


def session_hash(site_id: str, visitor: int, first_ts_us: int) -> int:
    """A session id that any node computes alike from the visit's first event: what the
    ClickHouse store uses, so a sessionizer's ids need no shared counter and a replayed
    batch gets the same ids. Positive, like the counter's."""
    material = f"{site_id}\x00{visitor}\x00{first_ts_us}".encode()
    return _to_int64(hashlib.blake2b(material, digest_size=8).digest()) & 0x7FFF_FFFF_FFFF_FFFF


def user_key(site_secret: bytes, user_id: str) -> int:
    """Stable pseudonym of a server-side user id, for privacy requests (never the id itself)."""
    return _to_int64(hmac.new(site_secret, user_id.encode(), hashlib.sha256).digest()[:8])


class Salts:
    """Salt per site-day, cached. Days before yesterday get a throw-away salt: their real
    salt is destroyed, so a late event for them can't be linked to anything."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta
        self._cache: dict[tuple[str, date], bytes] = {}
        # Salts for days whose real salt is gone: kept in memory only, a bounded number.
        self._late: dict[tuple[str, date], bytes] = {}
        self._destroyed: dict[str, date] = {}  # site -> the `today` of its last destroy

    def get(self, site_id: str, day: date, today: date) -> bytes:
        key = (site_id, day)
        salt = self._cache.get(key)
        if salt is not None:
            return salt
        yesterday = today - timedelta(days=1)
        if day < yesterday:
            return self._late_salt(key)
        salt = self._meta.salt(site_id, day.isoformat())
        self.destroy_before(site_id, today)
        self._cache[key] = salt
        return salt

    def destroy_before(self, site_id: str, today: date) -> None:
        """Destroy the site's salts older than yesterday, on disk and in memory. Once per
        site and day: get() never stores a salt older than yesterday, so nothing is left
        to destroy until the site's day changes (the minute sweep calls this for every
        site, on the event loop: one SQLite write per site per minute otherwise)."""
        if self._destroyed.get(site_id) == today:
            self._meta.scrub()  # a WAL truncation that had to wait for a reader
            return
        yesterday = today - timedelta(days=1)
        self._meta.destroy_salts_before(site_id, yesterday.isoformat())
        for old in [k for k in self._cache if k[0] == site_id and k[1] < yesterday]:
            del self._cache[old]
        self._destroyed[site_id] = today

    def _late_salt(self, key: tuple[str, date]) -> bytes:
        salt = self._late.get(key)
        if salt is None:
            if len(self._late) >= 10_000:
                self._late.clear()
            salt = self._late[key] = secrets.token_bytes(16)
        return salt


class Session(NamedTuple):
    """An open session. A tuple of plain values on purpose: CPython stops tracking such
    tuples in its cycle collector, so a table of 100k open sessions costs collections
    nothing (as objects they made every full collection scan them all: -30% throughput)."""

    id: int
    last_us: int  # the latest event time seen
    attrs: tuple[Any, ...]
    # When the session was last touched by the wall clock: a backfilled visit (server-side
    # events with past timestamps) stays open for its next event however old its times are.
    seen_us: int = 0


class Sessions:
    """Open sessions keyed by (site, visitor). A visitor id is valid for one site-day, so a
    session can never cross the site's midnight; 30 minutes of silence end it too."""

    def __init__(self, next_id: int = 1, *, hashed: bool = False) -> None:
        self._open: dict[tuple[str, int], Session] = {}
        self._next_id = next_id
        # hashed: ids by session_hash (ClickHouse, many sessionizers); else a counter, whose
        # small increasing values DuckDB stores in a few bits each (a hash takes 8 bytes).
        self._hashed = hashed

    def __len__(self) -> int:
        return len(self._open)

    def find(self, site_id: str, visitor: int, ts_us: int) -> Session | None:
        """The visitor's open session at ts, extended to ts; None when there is none. The
        30 minutes are counted in event time, whatever the wall clock did."""
        key = (site_id, visitor)
        session = self._open.get(key)
        if session is None or ts_us - session.last_us > SESSION_TIMEOUT_US:
            return None
        last = max(ts_us, session.last_us)
        session = self._open[key] = Session(session.id, last, session.attrs, _wall_us())
        return session

    def start(self, site_id: str, visitor: int, ts_us: int, attrs: tuple[Any, ...]) -> Session:
        if self._hashed:
            session = Session(session_hash(site_id, visitor, ts_us), ts_us, attrs, _wall_us())
        else:
            session = Session(self._next_id, ts_us, attrs, _wall_us())
            self._next_id += 1
        self._open[(site_id, visitor)] = session
        return session

    def sweep(self, now_us: int) -> int:
        """Forget sessions idle past the timeout, in event time and on the wall clock (a
        backdated session whose last event is hours old lives on while its events keep
        arriving); returns how many."""
        return sum(self.sweep_steps(now_us))

    def sweep_steps(self, now_us: int, step: int = 5_000) -> Iterator[int]:
        """sweep() in steps of `step` sessions, yielding how many each step forgot: the
        server's minute sweep lets requests run in between (100k open sessions took one
        ~20 ms pass of the event loop)."""
        cutoff = now_us - SESSION_TIMEOUT_US
        keys = list(self._open)
        for start in range(0, len(keys), step):
            gone = 0
            for key in keys[start : start + step]:
                s = self._open.get(key)  # a request may have ended or renewed it meanwhile
                if s is not None and max(s.last_us, s.seen_us) < cutoff:
                    del self._open[key]
                    gone += 1
            yield gone

    def restore(self, rows: Iterable[tuple[str, int, int, datetime, tuple[Any, ...]]]) -> None:
        """Reload open sessions after a restart: (site, visitor, session_id, last ts, attrs)."""
        for site_id, visitor, session_id, last_ts, attrs in rows:
            last_us = micros(last_ts)
            self._open[(site_id, visitor)] = Session(session_id, last_us, attrs, _wall_us())
            self._next_id = max(self._next_id, session_id + 1)


def _wall_us() -> int:
    return time.time_ns() // 1000


def micros(ts: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is UTC (as DuckDB returns them)."""
    return int(ts.timestamp() * 1_000_000) if ts.tzinfo else _naive_micros(ts)


def _naive_micros(ts: datetime) -> int:
    delta = ts - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
