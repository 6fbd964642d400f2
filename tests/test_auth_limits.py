"""Rate limits and usage headers, over real HTTP: countdown, 429, bursts that can't overshoot."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings
from tests.conftest import CHROME_UA, start_live_server, stop_live_server


def limited_world(tmp_path: Path, **limits: object) -> World:
    return World(start_live_server(auth_settings(tmp_path, limits=limits)))


@pytest.fixture
def small(tmp_path: Path) -> Iterator[World]:
    w = limited_world(tmp_path, key_per_minute=5, monthly_requests=1000)
    try:
        yield w
    finally:
        stop_live_server(w.live)


def test_headers_count_down_and_sixth_request_gets_429_when_limit_is_five(small: World) -> None:
    owner = small.user("owner@example.com")
    site = small.site("a.test", owner)
    token = small.key(owner, site, ("stats:read",))
    url = f"{small.live.url}/api/v1/stats/realtime"
    seen = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(6):
            seen.append(http.get(url, params={"site_id": site}))
    assert [r.status_code for r in seen] == [200] * 5 + [429]
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["4", "3", "2", "1", "0", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in seen} == {"5"}
    assert [r.headers["x-usage-monthly"] for r in seen[:5]] == ["1", "2", "3", "4", "5"]
    assert seen[0].headers["x-usage-limit"] == "1000"
    over = seen[5]
    reset = int(over.headers["x-ratelimit-reset"])
    retry = int(over.headers["retry-after"])
    assert 55 <= retry <= 60
    assert abs((time.time() + retry) - reset) <= 2
    assert over.headers["cache-control"] == "no-store"
    assert over.json() == {
        "error": {"code": "rate_limited", "message": "rate limit exceeded (5 requests per minute)"}
    }


def test_burst_of_fifty_never_overshoots_when_limit_is_twenty(tmp_path: Path) -> None:
    w = limited_world(tmp_path, key_per_minute=20)
    try:
        owner = w.user("owner@example.com")
        site = w.site("a.test", owner)
        token = w.key(owner, site, ALL_SCOPES)
        headers = {"Authorization": f"Bearer {token}", "User-Agent": CHROME_UA}
        url = f"{w.live.url}/api/v1/events"

        def post(i: int) -> int:
            body = {"event_name": "burst", "user_id": f"u{i}"}
            return httpx.post(url, json=body, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = Counter(pool.map(post, range(50)))
        assert statuses == {202: 20, 429: 30}
        stored = w.live.rows("SELECT count(*) AS n FROM events WHERE name = 'burst'")
        assert stored == [{"n": 20}]
    finally:
        stop_live_server(w.live)


def test_monthly_limit_gives_429_until_next_month_when_used_up(tmp_path: Path) -> None:
    w = limited_world(tmp_path, monthly_requests=2)
    try:
        owner = w.user("owner@example.com")
        site = w.site("a.test", owner)
        token = w.key(owner, site)
        with httpx.Client(base_url=w.live.url, headers={"X-API-Key": token}) as http:
            got = [http.get("/api/v1/stats/realtime").status_code for _ in range(3)]
            last = http.get("/api/v1/stats/realtime")
        assert got == [200, 200, 429]
        assert last.headers["x-usage-monthly"] == "2"
        assert int(last.headers["retry-after"]) > 0
    finally:
        stop_live_server(w.live)


def test_usage_survives_restart_when_counters_were_flushed(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    w = World(start_live_server(settings))
    owner = w.user("owner@example.com")
    site = w.site("a.test", owner)
    token = w.key(owner, site)
    with httpx.Client(base_url=w.live.url, headers={"X-API-Key": token}) as http:
        for _ in range(3):
            assert http.get("/api/v1/stats/realtime").status_code == 200
    stop_live_server(w.live)  # shutdown flushes the batched counters
    live = start_live_server(settings)
    try:
        with httpx.Client(base_url=live.url, headers={"X-API-Key": token}) as http:
            usage = http.get("/api/v1/usage")
        assert usage.headers["x-usage-monthly"] == "4"
        [key] = usage.json()["keys"]
        assert key["requests"] == 4
        row = live.services.meta.fetchone("SELECT last_used_at FROM api_keys")
        assert row is not None and abs(row[0] - time.time()) < 60
    finally:
        stop_live_server(live)


def test_ip_limit_applies_before_the_token_is_checked_when_guessing_keys(tmp_path: Path) -> None:
    w = limited_world(tmp_path, ip_per_minute=3)
    try:
        with httpx.Client(base_url=w.live.url, headers={"Authorization": "Bearer nope"}) as http:
            got = [http.get("/api/v1/sites").status_code for _ in range(5)]
        assert got == [401, 401, 401, 429, 429]
    finally:
        stop_live_server(w.live)


def test_loop_counters_reset_ended_windows_and_sweep_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collect limits' storage: fixed windows through `limits`' own strategy, no thread."""
    from limits import RateLimitItemPerMinute
    from limits.strategies import FixedWindowRateLimiter

    import app.auth.limits as module

    now = [1_000_000.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    threads_before = threading.active_count()
    counters = module.LoopCounters()
    limiter = FixedWindowRateLimiter(counters)
    item = RateLimitItemPerMinute(2)
    assert [limiter.hit(item, "ip", "a") for _ in range(3)] == [True, True, False]
    assert limiter.hit(item, "ip", "b")  # keys are independent
    stats = limiter.get_window_stats(item, "ip", "a")
    assert (stats.remaining, stats.reset_time) == (0, 1_000_060.0)
    now[0] += 59.9
    assert not limiter.hit(item, "ip", "a")
    now[0] += 0.1  # the window has ended: a fresh one
    assert limiter.hit(item, "ip", "a")
    assert limiter.get_window_stats(item, "ip", "b").remaining == 2  # ended, reads as empty
    # Ended windows are dropped by the next sweep (at most one a minute), not kept forever.
    now[0] += 61
    limiter.hit(item, "ip", "c")
    assert set(counters._counts) == {item.key_for("ip", "c")}
    assert threading.active_count() == threads_before  # no expiry thread


def test_collect_limits_count_where_the_retry_after_reads_them() -> None:
    """admit_hit/admit_site_hit count in the counters get_window_stats reads: the 4th hit of
    an IP limited to 3 a minute is refused, and collect_retry_after then says when the
    minute ends; another IP and another site are untouched."""
    from app.auth.limits import RateLimits
    from app.config import AuthSettings, LimitSettings

    limits = RateLimits(
        LimitSettings(collect_ip_per_minute=3, collect_site_per_minute=5), AuthSettings()
    )
    assert [limits.admit_hit("203.0.113.9") for _ in range(4)] == [True, True, True, False]
    assert limits.admit_hit("203.0.113.10")
    assert 55 <= limits.collect_retry_after("203.0.113.9", []) <= 60  # the window just began
    assert limits.collect_retry_after("203.0.113.10", []) == 1  # nothing full: the floor
    assert [limits.admit_site_hit("a") for _ in range(6)] == [True] * 5 + [False]
    assert limits.admit_site_hit("b")
    assert 55 <= limits.collect_retry_after("203.0.113.10", ["a"]) <= 60
