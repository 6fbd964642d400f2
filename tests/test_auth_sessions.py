"""Sign-in: first-run setup, session cookies with CSRF, logout, JWTs, throttling, request ids."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.accounts_fixtures import PASSWORD, World, auth_settings, world_fixture  # noqa: F401
from tests.conftest import start_live_server, stop_live_server


def test_first_run_setup_creates_the_admin_once_when_no_user_exists(world: World) -> None:
    with world.client() as http:
        first = http.post(
            "/api/v1/auth/setup", json={"email": "Me@Example.com", "password": PASSWORD}
        )
        again = http.post(
            "/api/v1/auth/setup", json={"email": "x@example.com", "password": PASSWORD}
        )
        short = http.post("/api/v1/auth/login", json={"email": "me@example.com", "password": "no"})
    assert first.status_code == 201
    assert first.json()["user"]["email"] == "me@example.com"
    assert first.json()["user"]["is_admin"] is True
    assert again.status_code == 409
    assert short.status_code == 401


def test_login_sets_httponly_lax_cookie_and_logout_ends_it_when_csrf_sent(world: World) -> None:
    world.user("owner@example.com")
    http = world.session("owner@example.com")
    cookie = next(c for c in http.cookies.jar if c.name == "avocet_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "lax"
    assert not cookie.secure  # plain http
    me = http.get("/api/v1/auth/me").json()
    assert (me["user"]["email"], me["via"]) == ("owner@example.com", "session")
    csrf = http.headers.pop("X-CSRF-Token")
    assert http.post("/api/v1/auth/logout").status_code == 403
    out = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.json() == {"ok": True}
    assert http.get("/api/v1/auth/me").status_code == 401


def test_cookie_is_secure_when_a_trusted_proxy_says_https(world: World) -> None:
    world.user("owner@example.com")
    with world.client(**{"X-Forwarded-Proto": "https"}) as http:
        response = http.post(
            "/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
        )
    assert "secure" in response.headers["set-cookie"].lower()
    assert "httponly" in response.headers["set-cookie"].lower()


def test_jwt_works_as_bearer_until_it_expires(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("a.test", owner)
    with world.client() as http:
        issued = http.post(
            "/api/v1/auth/token", json={"email": "owner@example.com", "password": PASSWORD}
        ).json()
        assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
        auth = {"Authorization": f"Bearer {issued['access_token']}"}
        ok = http.get("/api/v1/stats/realtime", params={"site_id": site}, headers=auth)
        old = world.live.services.auth.jwts.issue(owner.id, now=time.time() - 7200)
        late = http.get("/api/v1/sites", headers={"Authorization": f"Bearer {old}"})
        forged = http.get("/api/v1/sites", headers={"Authorization": f"Bearer {old[:-2]}xx"})
    assert ok.status_code == 200
    assert late.status_code == forged.status_code == 401
    assert late.headers["www-authenticate"].startswith("Bearer")


def test_burst_of_guesses_is_throttled_when_over_account_limit(tmp_path: Path) -> None:
    live = start_live_server(auth_settings(tmp_path, auth={"login_attempts_per_account": 3}))
    w = World(live)
    try:
        w.user("owner@example.com")

        def guess(i: int) -> int:
            body = {"email": "owner@example.com", "password": f"wrong guess {i}"}
            return httpx.post(f"{live.url}/api/v1/auth/login", json=body, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = Counter(pool.map(guess, range(20)))
        right = httpx.post(
            f"{live.url}/api/v1/auth/login",
            json={"email": "owner@example.com", "password": PASSWORD},
        )
        assert statuses == {401: 3, 429: 17}
        assert right.status_code == 429
        assert int(right.headers["retry-after"]) > 0
    finally:
        stop_live_server(live)


def test_request_id_is_echoed_or_generated_when_any_route_answers(world: World) -> None:
    with world.client() as http:
        echoed = http.post("/collect", content=b"{}", headers={"X-Request-ID": "abc-123"})
        missing = http.get("/no/such/route")
        preflight = http.options(
            "/api/v1/sites",
            headers={"Origin": "https://x.test", "Access-Control-Request-Method": "GET"},
        )
        junk = http.get("/api/health", headers={"X-Request-ID": "bad id with spaces"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(missing.headers["x-request-id"]) == 32 and missing.status_code == 404
    assert preflight.headers["x-request-id"]
    assert junk.headers["x-request-id"] != "bad id with spaces"
    exposed = preflight.headers.get("access-control-expose-headers", "")
    assert exposed == "" or "X-RateLimit-Remaining" in exposed
    with world.client(Origin="https://x.test") as http:
        cors = http.get("/api/health").headers["access-control-expose-headers"]
    for name in ("X-Request-ID", "X-RateLimit-Reset", "Retry-After", "X-Usage-Monthly"):
        assert name in cors
