"""The dialects over real HTTP: every example request of their seeds (host swapped, our key),
auth and limits in each dialect's envelope, and /openapi.json listing them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.storage.accounts import User
from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings
from tests.conftest import start_live_server, stop_live_server

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
USAGE_HEADERS = ("x-usage-monthly", "x-usage-limit", "x-usage-reset")


@dataclass
class Setup:
    world: World
    site: str  # alice's
    other: str  # bob's
    key: str  # alice's stats:read key for `site`
    all_key: str  # alice's key for all her sites, every scope
    bob_key: str
    scratch: str  # alice's too: takes the written events, so `site` stays empty

    @property
    def url(self) -> str:
        return self.world.live.url

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    live = start_live_server(auth_settings(Path(tmp_path_factory.mktemp("dialects"))))
    w = World(live)
    w.user("root@example.com")  # the instance admin
    alice, bob = w.user("alice@example.com"), w.user("bob@example.com")
    site, other = w.site("a.test", alice), w.site("b.test", bob)
    scratch = w.site("scratch.test", alice)
    try:
        yield Setup(
            w,
            site,
            other,
            w.key(alice, site, ("stats:read",)),
            w.key(alice, None, ALL_SCOPES),
            w.key(bob, other, ALL_SCOPES),
            scratch,
        )
    finally:
        for client in w.clients:
            client.close()
        stop_live_server(live)


def has_headers(response: httpx.Response, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in response.headers]
    assert missing == [], response.headers


# --- OpenAnalytics (seed 001) ---------------------------------------------------------------


def test_openanalytics_list_projects_example(setup: Setup) -> None:
    # curl https://api.openanalyticsapi.com/v1/projects -H "Authorization: Bearer oa_live_…"
    response = setup.get("/v1/projects", Authorization=f"Bearer {setup.all_key}")
    assert response.status_code == 200
    projects = response.json()["projects"]
    assert {p["id"]: p["domain"] for p in projects} == {
        setup.site: "a.test",
        setup.scratch: "scratch.test",
    }
    has_headers(response, RATE_HEADERS)


def test_openanalytics_query_pageviews_example(setup: Setup) -> None:
    # curl ".../v1/projects/PROJECT_ID/pageviews?from=2026-05-01&to=2026-05-12&group_by=path"
    response = setup.get(
        f"/v1/projects/{setup.site}/pageviews?from=2026-05-01&to=2026-05-12&group_by=path",
        Authorization=f"Bearer {setup.key}",
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "project_id": setup.site,
        "from": "2026-05-01",
        "to": "2026-05-12",
        "timezone": "UTC",
        "group_by": "path",
        "results": [],
        "total_rows": 0,
    }
    has_headers(response, RATE_HEADERS)
    assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())


def test_openanalytics_server_side_event_example(setup: Setup) -> None:
    # The seed's body, with its timestamp moved to now: May 2025 is outside our raw window.
    body = {
        "event_type": "conversion",
        "event_name": "purchase",
        "user_id": "sha256_hash_of_user_id",
        "url": "https://example.com/thanks",
        "properties": {"plan": "pro"},
        "revenue": 49.99,
        "currency": "USD",
        "timestamp": int(time.time() * 1000),
    }
    response = httpx.post(
        f"{setup.url}/v1/projects/{setup.scratch}/events",
        json=body,
        headers={"Authorization": f"Bearer {setup.all_key}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    has_headers(response, RATE_HEADERS)


@pytest.mark.parametrize(
    "path",
    ["/v1/projects", "/v1/projects/{site}/pageviews", "/v1/projects/{site}/sessions",
     "/v1/projects/{site}/realtime"],
)  # fmt: skip
def test_openanalytics_missing_key_is_401_in_its_envelope(setup: Setup, path: str) -> None:
    response = setup.get(path.format(site=setup.site))
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "an API key is required"}
    # "Rate limit headers ... are returned on every response" (seed 001): 401s included.
    has_headers(response, RATE_HEADERS)
    assert int(response.headers["x-ratelimit-remaining"]) < int(
        response.headers["x-ratelimit-limit"]
    )


@pytest.mark.parametrize("endpoint", ["pageviews", "sessions", "realtime"])
def test_openanalytics_wrong_site_is_404_or_403(setup: Setup, endpoint: str) -> None:
    theirs = setup.get(
        f"/v1/projects/{setup.other}/{endpoint}", Authorization=f"Bearer {setup.key}"
    )
    assert theirs.status_code == 404
    assert theirs.json() == {"error": "not_found", "message": "site not found"}
    has_headers(theirs, RATE_HEADERS)
    missing = setup.get(f"/v1/projects/nope/{endpoint}", Authorization=f"Bearer {setup.key}")
    assert missing.status_code == 404
    bound = setup.get(
        f"/v1/projects/{setup.site}/{endpoint}", Authorization=f"Bearer {setup.bob_key}"
    )
    assert bound.status_code == 404  # bob can't see alice's site at all


def test_openanalytics_bad_parameters_are_400(setup: Setup) -> None:
    auth = {"Authorization": f"Bearer {setup.key}"}
    cases = {
        "group_by=page": "group_by must be one of path, referrer, country, device, browser, os",
        "from=2026-05-01": "period=custom requires both from and to (YYYY-MM-DD)",
        "from=2026-05-01&to=May": "to must be a date in YYYY-MM-DD format",
        "group_by=path&limit=0": "limit must be between 1 and 1000",
        "from=0001-01-01&to=0001-01-02": "from must be between 1900 and 9000",
    }
    for query, message in cases.items():
        response = setup.get(f"/v1/projects/{setup.site}/pageviews?{query}", **auth)
        assert response.status_code == 400, query
        assert response.json() == {"error": "invalid_request", "message": message}


def test_openanalytics_realtime_is_not_cached_and_counts_like_native(setup: Setup) -> None:
    auth = {"Authorization": f"Bearer {setup.key}"}
    response = setup.get(f"/v1/projects/{setup.site}/realtime", **auth)
    native = setup.get(f"/api/v1/stats/realtime?site_id={setup.site}&minutes=5", **auth).json()
    assert response.status_code == 200
    assert response.json() == {
        "project_id": setup.site,
        "active_visitors": native["current_visitors"],
        "window_minutes": 5,
    }
    assert response.headers["cache-control"] == "no-store"


# --- Zenovay (seed 003) ---------------------------------------------------------------------


def zenovay_ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "data", "timestamp"}
    assert body["success"] is True
    assert TIMESTAMP.match(body["timestamp"])
    has_headers(response, ("x-ratelimit-limit", "x-ratelimit-remaining", *USAGE_HEADERS))
    return body["data"]


def zenovay_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert TIMESTAMP.match(body["error"].pop("timestamp"))
    assert body == {"success": False, "error": {"message": message, "code": code}}


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_zenovay_list_websites_examples(setup: Setup, header: str) -> None:
    # curl .../api/external/v1/websites -H "X-API-Key: zv_…"   (or Authorization: Bearer zv_…)
    value = setup.all_key if header == "X-API-Key" else f"Bearer {setup.all_key}"
    data = zenovay_ok(setup.get("/api/external/v1/websites", **{header: value}))
    assert data["total"] == 2
    assert {w["id"]: w["domain"] for w in data["websites"]} == {
        setup.site: "a.test",
        setup.scratch: "scratch.test",
    }
    assert all(w["tracking_code"] == w["id"] for w in data["websites"])


@pytest.mark.parametrize("query", ["?range=30d", ""])
def test_zenovay_analytics_summary_examples(setup: Setup, query: str) -> None:
    # curl ".../api/external/v1/analytics/YOUR_WEBSITE_ID?range=30d" -H "X-API-Key: zv_…"
    # and the fetch / requests examples without a range (default 7d)
    response = setup.get(
        f"/api/external/v1/analytics/{setup.site}{query}", **{"X-API-Key": setup.key}
    )
    data = zenovay_ok(response)
    assert data["time_range"] == (query[7:] or "7d")
    assert data["website"] == {"id": setup.site, "domain": "a.test", "name": "a.test"}
    assert data["summary"] == {
        "unique_visitors": 0,
        "total_visitors": 0,
        "total_page_views": 0,
        "bounce_rate": 0.0,
        "avg_session_duration": 0,
    }
    assert len(data["daily_stats"]) == (30 if query else 7)


def test_zenovay_usage_example(setup: Setup) -> None:
    # curl .../api/external/v1/usage -H "X-API-Key: zv_…"
    response = setup.get("/api/external/v1/usage", **{"X-API-Key": setup.bob_key})
    data = zenovay_ok(response)
    assert data["requests"] == int(response.headers["x-usage-monthly"])
    assert data["limit"] == int(response.headers["x-usage-limit"])
    assert data["reset"] == response.headers["x-usage-reset"]
    assert data["remaining"] == data["limit"] - data["requests"]
    assert [k["requests"] for k in data["keys"]] == [data["requests"]]


def test_zenovay_request_id_is_echoed(setup: Setup) -> None:
    response = setup.get(
        "/api/external/v1/websites", **{"X-API-Key": setup.key, "X-Request-ID": "your-unique-id"}
    )
    assert response.headers["x-request-id"] == "your-unique-id"


@pytest.mark.parametrize("endpoint", ["", "/visitors", "/pages", "/countries", "/technology"])
def test_zenovay_analytics_endpoints_page(setup: Setup, endpoint: str) -> None:
    response = setup.get(
        f"/api/external/v1/analytics/{setup.site}{endpoint}?range=90d&limit=10&offset=0",
        **{"X-API-Key": setup.key},
    )
    data = zenovay_ok(response)
    if endpoint:
        assert data["pagination"]["limit"] == 10


def test_zenovay_website_details(setup: Setup) -> None:
    data = zenovay_ok(
        setup.get(f"/api/external/v1/websites/{setup.site}", **{"X-API-Key": setup.key})
    )
    assert data["website"]["id"] == setup.site


@pytest.mark.parametrize(
    "path",
    ["/api/external/v1/websites", "/api/external/v1/usage", "/api/external/v1/analytics/{site}",
     "/api/external/v1/analytics/{site}/pages"],
)  # fmt: skip
def test_zenovay_missing_key_is_401_in_its_envelope(setup: Setup, path: str) -> None:
    response = setup.get(path.format(site=setup.site))
    zenovay_error(response, 401, "UNAUTHORIZED", "an API key is required")


def test_zenovay_errors_map_to_its_codes(setup: Setup) -> None:
    key = {"X-API-Key": setup.key}
    zenovay_error(
        setup.get(f"/api/external/v1/analytics/{setup.other}", **key),
        404,
        "NOT_FOUND",
        "site not found",
    )
    zenovay_error(
        setup.get(f"/api/external/v1/analytics/{setup.site}?range=12m", **key),
        400,
        "VALIDATION_ERROR",
        "range must be one of 24h, 7d, 30d, 90d, 1y",
    )
    zenovay_error(
        setup.get(f"/api/external/v1/analytics/{setup.site}/pages?limit=101", **key),
        400,
        "VALIDATION_ERROR",
        "limit must be between 1 and 100",
    )
    zenovay_error(
        setup.get("/api/external/v1/websites", **{"X-API-Key": "zv_YOUR_API_KEY"}),
        401,
        "UNAUTHORIZED",
        "malformed token",
    )
    events_only = setup.world.key(setup.world.user("e@example.com"), None, ("events:write",))
    zenovay_error(
        setup.get("/api/external/v1/websites", **{"X-API-Key": events_only}),
        403,
        "FORBIDDEN",
        "this API key lacks the sites:read scope",
    )
    # A key bound to one site, asked about another site of the same owner.
    alice_other = setup.get(f"/api/external/v1/websites/{setup.other}", **key)
    assert alice_other.status_code == 404


@pytest.mark.parametrize("kind", ["heatmaps/{site}/pages", "replays/{site}/sessions",
                                  "errors/{site}/groups"])  # fmt: skip
def test_zenovay_capture_routes_are_not_there_yet(setup: Setup, kind: str) -> None:
    response = setup.get(
        f"/api/external/v1/{kind.format(site=setup.site)}", **{"X-API-Key": setup.key}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# --- Ovyxa (seed 000) -----------------------------------------------------------------------


def test_ovyxa_missing_site_id_example_error(setup: Setup) -> None:
    # The seed's error example: a key that spans sites, no site_id.
    response = setup.get(
        "/api/v1/stats?date_from=2026-05-01&date_to=2026-05-12",
        Authorization=f"Bearer {setup.all_key}",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "Missing required parameter: site_id"}
    }


@pytest.mark.parametrize("missing", ["date_from", "date_to"])
def test_ovyxa_dates_are_required(setup: Setup, missing: str) -> None:
    params = {"site_id": setup.site, "date_from": "2026-05-01", "date_to": "2026-05-12"}
    del params[missing]
    response = httpx.get(
        f"{setup.url}/api/v1/stats", params=params, headers={"Authorization": f"Bearer {setup.key}"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": f"Missing required parameter: {missing}"}
    }


@pytest.mark.parametrize("token", ["key", "jwt"])
def test_ovyxa_answers_with_jwt_or_api_key_and_cors(setup: Setup, token: str) -> None:
    bearer = setup.key if token == "key" else setup.world.jwt("alice@example.com")
    response = setup.get(
        f"/api/v1/stats?site_id={setup.site}&date_from=2026-05-01&date_to=2026-05-03&compare=true",
        Authorization=f"Bearer {bearer}",
        Origin="https://dashboard.example",
    )
    assert response.status_code == 200, response.text
    zero = {"visitors": 0, "visits": 0, "pageviews": 0, "bounce_rate": 0.0, "visit_duration": 0}
    series = [{"date": f"2026-05-0{d}", **zero} for d in (1, 2, 3)]
    before = [{"date": f"2026-04-{d}", **zero} for d in (28, 29, 30)]
    assert response.json() == {
        "data": {
            "metrics": zero,
            "timeseries": series,
            "comparison": {
                "date_from": "2026-04-28",
                "date_to": "2026-04-30",
                "metrics": zero,
                "timeseries": before,
                "change": {"visitors": 0, "visits": 0, "pageviews": 0, "bounce_rate": 0.0,
                           "visit_duration": 0},
            },
        },
        "meta": {"timezone": "UTC", "from_rollups": False, "sampled": False,
                 "filtered_bot_traffic": 0},
    }  # fmt: skip
    assert response.headers["access-control-allow-origin"] == "*"
    has_headers(response, RATE_HEADERS + USAGE_HEADERS)


def test_ovyxa_auth_errors_use_the_native_envelope(setup: Setup) -> None:
    query = f"/api/v1/stats?site_id={setup.other}&date_from=2026-05-01&date_to=2026-05-12"
    none = setup.get(query)
    assert none.status_code == 401
    assert none.json() == {"error": {"code": "unauthorized", "message": "an API key is required"}}
    assert none.headers["www-authenticate"].startswith("Bearer")
    theirs = setup.get(query, Authorization=f"Bearer {setup.key}")
    assert theirs.status_code == 404
    assert theirs.json() == {"error": {"code": "not_found", "message": "site not found"}}


# --- Limits ---------------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[World]:
    w = World(start_live_server(auth_settings(tmp_path, limits={"key_per_minute": 2})))
    try:
        yield w
    finally:
        stop_live_server(w.live)


def _burst(w: World, owner: User, site: str, path: str) -> list[httpx.Response]:
    """Three requests with a fresh key (limits count per key)."""
    token = w.key(owner, site)
    with httpx.Client(base_url=w.live.url, headers={"X-API-Key": token}) as http:
        return [http.get(path.format(site=site)) for _ in range(3)]


def test_over_the_limit_each_dialect_answers_429_in_its_envelope(limited: World) -> None:
    w = limited
    owner = w.user("owner@example.com")
    site = w.site("a.test", owner)
    oa = _burst(w, owner, site, "/v1/projects/{site}/pageviews")
    zv = _burst(w, owner, site, "/api/external/v1/analytics/{site}")
    ov = _burst(
        w, owner, site, "/api/v1/stats?site_id={site}&date_from=2026-05-01&date_to=2026-05-02"
    )
    for seen in (oa, zv, ov):
        assert [r.status_code for r in seen] == [200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["1", "0", "0"]
        over = seen[-1]
        assert over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert over.headers["cache-control"] == "no-store"
        has_headers(over, RATE_HEADERS)
    message = "rate limit exceeded (2 requests per minute)"
    assert oa[-1].json() == {"error": "rate_limited", "message": message}
    zenovay_error(zv[-1], 429, "RATE_LIMIT_EXCEEDED", message)
    assert ov[-1].json() == {"error": {"code": "rate_limited", "message": message}}


# --- OpenAPI --------------------------------------------------------------------------------

DIALECT_ROUTES = {
    "/v1/projects": set(),
    "/v1/projects/{project_id}/pageviews": {"project_id", "from", "to", "group_by", "limit"},
    "/v1/projects/{project_id}/sessions": {"project_id", "from", "to", "group_by", "limit"},
    "/v1/projects/{project_id}/realtime": {"project_id", "minutes"},
    "/api/external/v1/analytics/{website_id}": {"website_id", "range"},
    "/api/external/v1/analytics/{website_id}/visitors": {"website_id", "range", "limit", "offset"},
    "/api/external/v1/analytics/{website_id}/pages": {"website_id", "range", "limit", "offset"},
    "/api/external/v1/analytics/{website_id}/countries": {"website_id", "range", "limit", "offset"},
    "/api/external/v1/analytics/{website_id}/technology": {"website_id", "range", "limit",
                                                           "offset"},
    "/api/external/v1/websites": set(),
    "/api/external/v1/websites/{website_id}": {"website_id"},
    "/api/external/v1/usage": set(),
    "/api/v1/stats": {"site_id", "date_from", "date_to", "timezone", "compare", "metrics"},
}  # fmt: skip


def test_openapi_lists_every_dialect_route_with_its_parameters_and_errors(setup: Setup) -> None:
    doc = httpx.get(f"{setup.url}/openapi.json").json()
    for path, params in DIALECT_ROUTES.items():
        operation = doc["paths"][path]["get"]
        assert {p["name"] for p in operation.get("parameters", [])} == params, path
        errors = [c for c in operation["responses"] if c[0] in "45"]
        schema = operation["responses"][errors[0]]["content"]["application/json"]["schema"]
        if path.startswith("/v1/"):
            assert schema["required"] == ["error", "message"]
        elif path.startswith("/api/external/"):
            assert schema["required"] == ["success", "error"]
        else:
            assert schema["properties"]["error"]["required"] == ["code", "message"]
    ranges = doc["paths"]["/api/external/v1/analytics/{website_id}"]["get"]["parameters"]
    assert next(p for p in ranges if p["name"] == "range")["schema"]["enum"] == [
        "24h",
        "7d",
        "30d",
        "90d",
        "1y",
    ]
