"""Every public tracking endpoint over real HTTP, rows read back from DuckDB."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx

from tests.conftest import CHROME_UA, IPHONE_UA, LiveServer

ROW_SQL = "SELECT * EXCLUDE (ts, day, visitor_id, session_id) FROM events ORDER BY ts"
# 81.2.69.160 is in GB in every IP-to-country database (MaxMind's own test address);
# 8.8.8.8 is US.
GB_IP = "81.2.69.160"


def expected_row(site_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "site_id": site_id,
        "name": "pageview",
        "hostname": "example.com",
        "pathname": "/",
        "entry_page": "/",
        "referrer": None,
        "source": None,
        "channel": "Direct",
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_content": None,
        "utm_term": None,
        "device": "desktop",
        "browser": "Chrome",
        "browser_version": "130.0",
        "os": "macOS",
        "os_version": "10.15",
        "screen": None,
        "country": "GB",
        "region": None,
        "city": None,
        "props": None,
        "revenue": None,
        "currency": None,
        "interactive": True,
        "engagement_ms": None,
        "scroll_depth": None,
        "user_key": None,
    }
    row.update(overrides)
    return row


def test_collect_stores_enriched_pageview_when_short_keys(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    body = {
        "n": "pageview",
        "u": "https://www.example.com/blog/post%201?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=launch&utm_content=hero&utm_term=Analytics&secret=1#top",
        "s": site,
        "r": "https://www.google.co.uk/search?q=x",
        "w": 1280,
    }
    with live_server.client(**{"X-Forwarded-For": GB_IP}) as http:
        response = http.post(
            "/collect", content=json.dumps(body), headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 204
    assert response.content == b""
    assert live_server.rows(ROW_SQL) == [
        expected_row(
            site,
            pathname="/blog/post 1",
            entry_page="/blog/post 1",
            referrer="google.co.uk",
            source="newsletter",
            channel="Email",
            utm_source="newsletter",
            utm_medium="email",
            utm_campaign="launch",
            utm_content="hero",
            utm_term="Analytics",
            screen="laptop",
        )
    ]


def test_collect_stores_custom_event_with_props_and_revenue_when_long_keys(
    live_server: LiveServer,
) -> None:
    site = live_server.add_site("example.com")
    body = {
        "name": "Purchase",
        "url": "https://example.com/checkout",
        "site_id": site,
        "referrer": "https://news.ycombinator.com/item?id=1",
        "props": {"plan": "pro", "seats": 3, "trial": False, "nested": {"x": 1}, "none": None},
        "revenue": {"amount": "19.90", "currency": "eur"},
        "interactive": False,
    }
    with live_server.client(**{"X-Forwarded-For": "8.8.8.8", "User-Agent": IPHONE_UA}) as http:
        assert http.post("/collect", json=body).status_code == 204
    assert live_server.rows(ROW_SQL) == [
        expected_row(
            site,
            name="Purchase",
            pathname="/checkout",
            entry_page="/checkout",
            referrer="news.ycombinator.com",
            source="Hacker News",
            channel="Organic Social",
            device="mobile",
            browser="Safari",
            browser_version="17.4",
            os="iOS",
            os_version="17.4",
            country="US",
            props={"plan": "pro", "seats": "3", "trial": "false"},
            revenue=Decimal("19.900000"),
            currency="EUR",
            interactive=False,
        )
    ]


def test_plausible_event_api_answers_202_ok_and_stores_when_domain(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    body = {
        "name": "pageview",
        "url": "http://example.com/pricing?ref=producthunt",
        "domain": "example.com",
        "referrer": "https://www.producthunt.com/",
    }
    with live_server.client(**{"X-Forwarded-For": GB_IP}) as http:
        response = http.post("/api/event", content=json.dumps(body))
    assert (response.status_code, response.text) == (202, "ok")
    assert "x-plausible-dropped" not in response.headers
    [row] = live_server.rows(ROW_SQL)
    assert row == expected_row(
        site,
        pathname="/pricing",
        entry_page="/pricing",
        referrer="producthunt.com",
        source="Product Hunt",
        channel="Organic Social",  # Plausible's own source categories list Product Hunt as social
    )


def test_plausible_event_api_returns_400_errors_when_body_invalid(live_server: LiveServer) -> None:
    live_server.add_site("example.com")
    cases = [
        (b"{not json", {"errors": {"request": ["Unable to process request: invalid JSON"]}}),
        (b'{"name":"pageview","domain":"example.com"}', {"errors": {"url": ["is required"]}}),
        (
            b'{"url":"https://example.com/","domain":"example.com"}',
            {"errors": {"name": ["can't be blank"]}},
        ),
        (
            b'{"name":"pageview","url":"https://example.com/"}',
            {"errors": {"domain": ["can't be blank"]}},
        ),
        (
            json.dumps(
                {"name": "x" * 121, "url": "https://example.com/", "domain": "example.com"}
            ).encode(),
            {"errors": {"name": ["should be at most 120 character(s)"]}},
        ),
    ]
    with live_server.client() as http:
        for body, expected in cases:
            response = http.post("/api/event", content=body)
            assert (response.status_code, response.json()) == (400, expected), body
    assert live_server.rows("SELECT * FROM events") == []


def test_plausible_event_api_flags_dropped_when_bot_or_unknown_domain(
    live_server: LiveServer,
) -> None:
    site = live_server.add_site("example.com")
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    event = {"name": "pageview", "url": "https://example.com/"}
    with live_server.client() as http:
        bot = http.post(
            "/api/event", json={**event, "domain": "example.com"}, headers={"User-Agent": googlebot}
        )
        unknown = http.post("/api/event", json={**event, "domain": "nope.example"})
        headless = http.post(
            "/collect",
            json={**event, "s": site},
            headers={"User-Agent": CHROME_UA.replace("Chrome/", "HeadlessChrome/")},
        )
    assert (bot.status_code, bot.text, bot.headers["x-plausible-dropped"]) == (202, "ok", "1")
    assert (unknown.status_code, unknown.headers["x-plausible-dropped"]) == (202, "1")
    assert headless.status_code == 204
    assert live_server.rows("SELECT * FROM events") == []
    # Bot counters are committed with the next batch: send one real event to flush them.
    with live_server.client() as http:
        http.post("/collect", json={**event, "s": site})
    assert live_server.rows("SELECT site_id, hits FROM bot_counts") == [
        {"site_id": site, "hits": 2}
    ]


def test_zenovay_paths_store_pageview_and_heartbeat_engagement(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    with live_server.client(**{"X-Forwarded-For": GB_IP}) as http:
        assert (
            http.post(f"/e/{site}", json={"url": "https://example.com/a", "w": 400}).status_code
            == 204
        )
        beat = {"url": "https://example.com/a", "e": 12_345, "sd": 80}
        assert http.post(f"/e/heartbeat/{site}", json=beat).status_code == 204
        live = http.get(f"/e/live/{site}")
        unknown = http.get("/e/live/doesnotexist")
    assert live.json() == {"visitors": 1}
    assert live.headers["cache-control"] == "no-store"
    assert unknown.json() == {"visitors": 0}
    rows = live_server.rows(ROW_SQL)
    base = {"pathname": "/a", "entry_page": "/a", "screen": "mobile"}
    assert rows == [
        expected_row(site, **base),
        expected_row(site, name="engagement", engagement_ms=12_345, scroll_depth=80, **base),
    ]


def test_engagement_is_dropped_when_no_session_exists(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    ping = {"n": "engagement", "u": "https://example.com/", "s": site, "e": 5000, "sd": 10}
    with live_server.client() as http:
        assert http.post("/collect", json=ping).status_code == 204
    assert live_server.rows("SELECT * FROM events") == []


def test_plausible_domain_list_records_one_event_per_site(live_server: LiveServer) -> None:
    first = live_server.add_site("example.com")
    second = live_server.add_site("example.org")
    body = {"name": "pageview", "url": "https://example.com/", "domain": "example.com,example.org"}
    with live_server.client() as http:
        assert http.post("/api/event", json=body).status_code == 202
    sites = live_server.rows("SELECT site_id FROM events ORDER BY site_id")
    assert sorted(r["site_id"] for r in sites) == sorted([first, second])


def test_forwarded_for_is_ignored_when_peer_is_not_a_trusted_proxy(tmp_path: object) -> None:
    from app.config import Settings
    from tests.conftest import free_port, start_live_server, stop_live_server

    settings = Settings(data_dir=f"{tmp_path}/data", port=free_port(), trusted_proxies=())
    live = start_live_server(settings)
    try:
        site = live.add_site("example.com")
        with live.client(**{"X-Forwarded-For": GB_IP}) as http:
            http.post("/collect", json={"n": "pageview", "u": "https://example.com/", "s": site})
        # The peer is 127.0.0.1 (no country); the header was not believed.
        assert live.rows("SELECT country FROM events") == [{"country": None}]
    finally:
        stop_live_server(live)


def test_realtime_requires_auth_unless_loopback_open(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    with live_server.client() as http:
        response = http.get("/api/v1/stats/realtime", params={"site_id": site})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {
        "error": {"code": "unauthorized", "message": "an API key is required"}
    }


def test_realtime_counts_recent_visitors_when_open_on_loopback(tmp_path: object) -> None:
    from app.config import Settings
    from tests.conftest import free_port, start_live_server, stop_live_server

    settings = Settings(data_dir=f"{tmp_path}/data", port=free_port(), open_stats_on_loopback=True)
    live = start_live_server(settings)
    try:
        site = live.add_site("example.com")
        with live.client() as http:
            for ip in ("8.8.8.8", "8.8.4.4", "8.8.8.8"):
                http.post(
                    "/collect",
                    json={"n": "pageview", "u": "https://example.com/", "s": site},
                    headers={"X-Forwarded-For": ip},
                )
            got = http.get("/api/v1/stats/realtime", params={"site_id": site, "minutes": "500"})
            missing = http.get("/api/v1/stats/realtime")
            unknown = http.get("/api/v1/stats/realtime", params={"site_id": "nope"})
        assert got.json() == {"current_visitors": 2, "window_minutes": 60}
        assert got.headers["cache-control"] == "no-store"
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == "invalid_request"
        assert unknown.status_code == 404
    finally:
        stop_live_server(live)


def test_health_reports_ok(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_cors_is_open_on_public_endpoints(live_server: LiveServer) -> None:
    preflight = httpx.options(
        f"{live_server.url}/api/event",
        headers={
            "Origin": "https://blog.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_public_collection_is_limited_per_ip_and_per_site(tmp_path: object) -> None:
    from app.config import LimitSettings, Settings
    from tests.conftest import free_port, start_live_server, stop_live_server

    limits = LimitSettings(collect_ip_per_minute=3, collect_site_per_minute=5)
    settings = Settings(data_dir=f"{tmp_path}/data", port=free_port(), limits=limits)
    live = start_live_server(settings)
    try:
        site = live.add_site("example.com")
        hit = {"n": "pageview", "u": "https://example.com/", "s": site}
        event = {"name": "pageview", "url": "https://example.com/", "domain": "example.com"}
        with live.client() as http:
            one_ip = [
                http.post("/collect", json=hit, headers={"X-Forwarded-For": "8.8.8.8"})
                for _ in range(4)
            ]
            over_ip = http.post("/api/event", json=event, headers={"X-Forwarded-For": "8.8.8.8"})
            # 3 stored for 8.8.8.8; two more IPs bring the site to its limit of 5.
            for ip in ("8.8.4.4", "1.1.1.1"):
                http.post("/collect", json=hit, headers={"X-Forwarded-For": ip})
            over_site = http.post("/api/event", json=event, headers={"X-Forwarded-For": "9.9.9.9"})
            silent = http.post("/collect", json=hit, headers={"X-Forwarded-For": "9.9.9.8"})
        assert [r.status_code for r in one_ip] == [204, 204, 204, 204]
        assert over_ip.status_code == 429
        assert 1 <= int(over_ip.headers["retry-after"]) <= 60
        assert over_ip.json() == {"errors": {"request": ["Too many requests"]}}
        assert over_site.status_code == 429
        assert silent.status_code == 204
        assert live.rows("SELECT count(*) AS n FROM events") == [{"n": 5}]
        assert live.services.ingest.dropped["rate_limited"] == 4
    finally:
        stop_live_server(live)


def _cors(response: httpx.Response) -> dict[str, str]:
    headers = response.headers.items()
    return {k: v for k, v in headers if k.startswith("access-control-") or k == "vary"}


def test_tracking_front_answers_the_silent_routes_as_litestar_would(
    live_server: LiveServer,
) -> None:
    """/collect and /e/* are answered in front of Litestar (collect.TrackingFront): the same
    204, CORS headers and X-Request-ID as a Litestar route gives, and the hit is stored."""
    site = live_server.add_site("example.com")
    origin = {"Origin": "https://blog.example", "X-Forwarded-For": GB_IP}
    with live_server.client(**origin) as http:
        # A Litestar route's answer to a request with an Origin, for comparison.
        reference = _cors(http.post("/api/event", json={"name": "x", "url": "https://x.test/"}))
        assert reference["access-control-allow-origin"] == "*"
        hit = {"n": "pageview", "u": "https://example.com/a", "s": site}
        paths = ["/collect", f"/e/{site}", f"/e/heartbeat/{site}"]
        bodies = [hit, {"u": "https://example.com/b"}, {"u": "https://example.com/b", "e": 500}]
        for path, body in zip(paths, bodies, strict=True):
            response = http.post(path, json=body, headers={"X-Request-ID": f"req{len(path)}"})
            assert response.status_code == 204, path
            assert response.content == b""
            assert _cors(response) == reference, path
            assert response.headers["x-request-id"] == f"req{len(path)}"
        # A request with cookies gets its origin echoed, as Litestar's CORS middleware does.
        cookied = http.post("/collect", json=hit, headers={"Cookie": "a=b"})
        assert cookied.headers["access-control-allow-origin"] == "https://blog.example"
        assert cookied.headers["vary"] == "Origin"
    with live_server.client() as http:  # no Origin: no CORS headers at all
        assert _cors(http.post("/collect", json=hit)) == {}
        # Paths the front doesn't own still reach Litestar's router.
        assert http.post(f"/e/live/{site}", json=hit).status_code == 405
        assert http.post("/collect/extra", json=hit).status_code == 404
    rows = live_server.rows("SELECT name, pathname FROM events ORDER BY ts")
    assert rows == [
        {"name": "pageview", "pathname": "/a"},
        {"name": "pageview", "pathname": "/b"},
        {"name": "engagement", "pathname": "/b"},
        {"name": "pageview", "pathname": "/a"},
        {"name": "pageview", "pathname": "/a"},
    ]


def test_silent_route_matches_only_the_tracking_paths() -> None:
    from app.api.collect import silent_route

    assert silent_route("/collect") == (None, None)
    assert silent_route("/e/abc") == ("abc", "pageview")
    assert silent_route("/e/heartbeat/abc") == ("abc", "engagement")
    assert silent_route("/e/heartbeat") == ("heartbeat", "pageview")  # as Litestar routes it
    for path in ("/e/", "/e/live/abc", "/e/heartbeat/", "/e/a/b/c", "/collect/", "/api/event"):
        assert silent_route(path) is None, path
