"""Rate limits (the `limits` library, in memory, moving window) and monthly usage counters."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import NamedTuple

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from app.config import AuthSettings, LimitSettings
from app.storage.keys import record_usage, usage_count
from app.storage.meta import MetaStore


class LoopCounters(Storage):
    """Fixed-window counters for the public collect limits, used on the event loop thread only.

    `limits`' MemoryStorage rescans every key from a timer thread 100 times a second while
    hits arrive; with one key per visitor IP that scan took ~15 % of the ingest core under
    load (and the GIL with it). Here a counter is reset when touched after its window ended,
    and ended windows are swept at most once a minute: O(1) per hit, no thread, no lock."""

    STORAGE_SCHEME = ["avocet-loop-counters"]  # noqa: RUF012 (declared so by limits)
    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, list[float]] = {}  # key -> [count, window end]
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def _sweep(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._next_sweep = now + self.SWEEP_SECONDS

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            if now >= self._next_sweep:
                self._sweep(now)
            entry = self._counts[key] = [0, now + expiry]
        entry[0] += amount
        return int(entry[0])

    def get(self, key: str) -> int:
        entry = self._counts.get(key)
        return int(entry[0]) if entry is not None and entry[1] > time.time() else 0

    def get_expiry(self, key: str) -> float:
        entry = self._counts.get(key)
        return entry[1] if entry is not None and entry[1] > time.time() else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        count = len(self._counts)
        self._counts = {}
        return count

    def clear(self, key: str) -> None:
        self._counts.pop(key, None)


class _FixedKey:
    """FixedWindowRateLimiter.hit for one limit and one identifier, with the key built as
    the limit's key_for builds it (so get_window_stats reads the same counter) from two
    strings made once: the library's generic path cost ~4 % of the ingest core per check."""

    __slots__ = ("amount", "expiry", "prefix", "suffix")

    def __init__(self, item: RateLimitItem, name: str) -> None:
        self.prefix, self.suffix = item.key_for(name, "\x00").split("\x00")
        self.amount = item.amount
        self.expiry = item.get_expiry()

    def hit(self, counters: LoopCounters, identifier: str) -> bool:
        return counters.incr(self.prefix + identifier + self.suffix, self.expiry) <= self.amount


class Verdict(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds when the oldest counted request leaves the window
    retry_after: int  # seconds until one more request is allowed (when not allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimits:
    """Moving windows: a burst can't double the limit across a window edge. Every call runs
    on the event loop thread, so a hit is atomic and concurrent requests can't overshoot."""

    def __init__(self, limits: LimitSettings, auth: AuthSettings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_key = RateLimitItemPerMinute(limits.key_per_minute)
        self.per_ip = RateLimitItemPerMinute(limits.ip_per_minute)
        self.per_site = RateLimitItemPerMinute(limits.site_per_minute)
        self.login_account = parse(f"{auth.login_attempts_per_account}/15 minutes")
        self.login_ip = RateLimitItemPerMinute(auth.login_attempts_per_ip)
        # Public collection is the hot path: fixed windows (one counter per key, a few µs)
        # instead of moving ones (one timestamp per hit).
        self._counters = LoopCounters()
        self._fixed = FixedWindowRateLimiter(self._counters)
        self.collect_site = RateLimitItemPerMinute(limits.collect_site_per_minute)
        self.collect_ip = RateLimitItemPerMinute(limits.collect_ip_per_minute)
        self._collect_ip = _FixedKey(self.collect_ip, "collect-ip")
        self._collect_site = _FixedKey(self.collect_site, "collect-site")

    def admit_hit(self, ip: str) -> bool:
        """A public tracking hit from this IP is within its limit."""
        return self._collect_ip.hit(self._counters, ip)

    def admit_site_hit(self, site_id: str) -> bool:
        """One more public tracking hit for this site is within its limit."""
        return self._collect_site.hit(self._counters, site_id)

    def collect_retry_after(self, ip: str, site_ids: list[str]) -> int:
        """Seconds until the full ones among the IP's and these sites' windows have room."""
        windows = [self._fixed.get_window_stats(self.collect_ip, "collect-ip", ip)]
        windows += [
            self._fixed.get_window_stats(self.collect_site, "collect-site", s) for s in site_ids
        ]
        full = [w.reset_time for w in windows if w.remaining <= 0]
        return max(1, math.ceil(max(full, default=time.time()) - time.time()))

    def hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        allowed = self._limiter.hit(item, *identifiers)
        stats = self._limiter.get_window_stats(item, *identifiers)
        now = time.time()
        reset = max(stats.reset_time, now)
        return Verdict(
            allowed,
            item.amount,
            max(stats.remaining, 0),
            math.ceil(reset),
            0 if allowed else max(1, math.ceil(reset - now)),
        )


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def next_month_start(now: float) -> str:
    """ISO timestamp of the next UTC month start, as X-Usage-Reset shows it."""
    day = datetime.fromtimestamp(now, UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00.000Z"


def seconds_to_next_month(now: float) -> int:
    start = datetime.fromisoformat(next_month_start(now).replace(".000Z", "+00:00"))
    return max(1, math.ceil(start.timestamp() - now))


class Usage:
    """Requests per subject per month. Counted in memory, written to SQLite in batches by
    flush() (a background task and shutdown); a subject's stored total is read once."""

    def __init__(self, meta: MetaStore, monthly_limit: int) -> None:
        self._meta = meta
        self.limit = monthly_limit
        self._totals: dict[tuple[str, str], int] = {}
        self._pending: Counter[tuple[str, str]] = Counter()
        self._last_used: dict[str, int] = {}

    def used(self, subject: str, now: float) -> int:
        """Requests this month so far (loads the stored total on first use)."""
        slot = (subject, month_of(now))
        total = self._totals.get(slot)
        if total is None:
            total = self._totals[slot] = usage_count(self._meta, *slot) + self._pending[slot]
        return total

    def count(self, subject: str, key_id: str | None, now: float) -> int:
        """Count one request; returns the month's total including it."""
        total = self.used(subject, now) + 1
        slot = (subject, month_of(now))
        self._totals[slot] = total
        self._pending[slot] += 1
        if key_id is not None:
            self._last_used[key_id] = int(now)
        return total

    def take(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """The pending counts and last-used times, handed over for one flush."""
        pending, last_used = dict(self._pending), self._last_used
        self._pending, self._last_used = Counter(), {}
        return pending, last_used

    def give_back(self, pending: dict[tuple[str, str], int], last_used: dict[str, int]) -> None:
        """A failed flush: keep the counts for the next one."""
        self._pending.update(pending)
        for key, ts in last_used.items():
            self._last_used[key] = max(ts, self._last_used.get(key, 0))

    def write(self, pending: dict[tuple[str, str], int], last_used: dict[str, int]) -> None:
        if pending or last_used:
            record_usage(self._meta, pending, last_used)
