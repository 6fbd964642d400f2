"""Hostile bodies at the public endpoints: never a 5xx, never a partial row."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounts_fixtures import World, world_fixture  # noqa: F401
from tests.conftest import LiveServer

KEYS = [
    "n",
    "name",
    "u",
    "url",
    "d",
    "domain",
    "s",
    "site_id",
    "r",
    "referrer",
    "p",
    "props",
    "m",
    "meta",
    "$",
    "revenue",
    "i",
    "interactive",
    "h",
    "hashMode",
    "e",
    "sd",
    "w",
    "screen_width",
    "zzz",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
urls = st.sampled_from(
    [
        "https://example.com/",
        "http://example.com/a?utm_source=x",
        "example.com",
        "ftp://x/",
        "https://[::1/",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 3000,
        "",
    ]
)


def body_strategy(site: str) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            **{k: json_values for k in KEYS},
            "u": urls,
            "s": st.sampled_from([site, "unknown", ""]),
            "d": st.sampled_from(["example.com", "other.com", "", "example.com," * 20]),
            "n": st.sampled_from(["pageview", "engagement", "Signup", "", "x" * 200]),
        },
    )
    as_json = fields.map(lambda d: json.dumps(d, allow_nan=True).encode())
    return st.one_of(as_json, st.binary(max_size=300), st.text(max_size=200).map(str.encode))


def assert_rows_complete(live: LiveServer) -> None:
    broken = live.rows(
        "SELECT * FROM events WHERE site_id IS NULL OR name IS NULL OR name = ''"
        " OR hostname IS NULL OR pathname IS NULL OR entry_page IS NULL OR channel IS NULL"
        " OR length(name) > 120"
    )
    assert broken == []


def test_fuzzed_bodies_never_get_5xx_or_store_partial_rows(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    http = live_server.client()
    paths = ["/collect", f"/e/{site}", f"/e/heartbeat/{site}", "/api/event"]

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=body_strategy(site),
        path=st.sampled_from(paths),
        ctype=st.sampled_from(
            ["text/plain", "application/json", "application/x-www-form-urlencoded"]
        ),
    )
    def check(body: bytes, path: str, ctype: str) -> None:
        response = http.post(path, content=body, headers={"Content-Type": ctype})
        if path == "/api/event":
            assert response.status_code in (202, 400), (body, response.text)
            if response.status_code == 400:
                errors: dict[str, Any] = response.json()["errors"]
                assert errors and all(isinstance(v, list) for v in errors.values())
        else:
            assert response.status_code == 204, (body, response.text)
            assert response.content == b""

    try:
        check()
    finally:
        http.close()
    assert_rows_complete(live_server)


def test_ten_megabyte_bodies_are_refused_without_storing(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    padding = "x" * (10 * 1024 * 1024)
    body = json.dumps(
        {"n": "pageview", "u": "https://example.com/", "s": site, "p": {"a": padding}}
    )
    with live_server.client() as http:
        assert http.post("/collect", content=body).status_code == 204
        assert http.post(f"/e/{site}", content=body).status_code == 204
        response = http.post("/api/event", content=body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["request"]
    assert live_server.rows("SELECT * FROM events") == []


def test_oversized_parts_are_dropped_not_the_event(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    props = {f"k{i}": "v" for i in range(40)}
    props["big"] = "v" * 2001
    props["k" * 301] = "long key"
    body = {
        "n": "Signup",
        "u": "https://example.com/",
        "s": site,
        "r": "https://ref.example/" + "r" * 2100,
        "p": props,
        "$": {"amount": "abc", "currency": "EUR"},
    }
    with live_server.client() as http:
        assert http.post("/collect", json=body).status_code == 204
    [row] = live_server.rows("SELECT props, referrer, revenue FROM events")
    assert row["props"] == {f"k{i}": "v" for i in range(30)}
    assert row["referrer"] is None
    assert row["revenue"] is None


def test_wrong_methods_and_paths_get_the_json_envelope(live_server: LiveServer) -> None:
    missing = httpx.get(f"{live_server.url}/api/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(f"{live_server.url}/collect")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "invalid_request"


# Issue #17 item 11: shapes that answered 500. Each is now the surface's 4xx, or the silent
# 204 on the tracker's endpoints (with nothing half-stored).
DEEP = b"[" * 1200 + b"]" * 1200
PAGE = b'"n":"pageview","u":"https://example.com/","d":"example.com"'
HOSTILE_HITS = {
    "invalid UTF-8 in a string": b'{"n":"pageview","u":"https://example.com/\xff","d":"example.com"}',
    "JSON nested 1,200 deep": b"{" + PAGE + b',"p":{"a":' + DEEP + b"}}",
}
INVALID_JSON = {"errors": {"request": ["Unable to process request: invalid JSON"]}}


def test_hostile_hits_get_400_at_api_event_and_204_at_collect(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    with live_server.client() as http:
        for body in HOSTILE_HITS.values():
            response = http.post("/api/event", content=body)
            assert (response.status_code, response.json()) == (400, INVALID_JSON), body[:40]
            for path in ("/collect", f"/e/{site}"):
                response = http.post(path, content=body)
                assert (response.status_code, response.content) == (204, b"")
    assert live_server.services.ingest.dropped["invalid"] == 4
    assert live_server.rows("SELECT * FROM events") == []


@pytest.mark.parametrize(
    ("extra", "stored"),
    [
        # Revenue past the events' DECIMAL(18, 6) is ignored like any malformed revenue
        # (Plausible's rule); "1e999999999" raised decimal.Overflow, the second rounded
        # up to 10^12 and would have failed the whole group commit.
        (b'"$":{"amount":"1e999999999","currency":"EUR"}', {"revenue": None, "screen": None}),
        (b'"$":{"amount":"-1e999999999","currency":"EUR"}', {"revenue": None, "screen": None}),
        (
            b'"$":{"amount":"999999999999.9999999","currency":"EUR"}',
            {"revenue": None, "screen": None},
        ),
        # Numbers of 400 digits are clamped like any other out-of-range number.
        (b'"w":' + b"9" * 400, {"revenue": None, "screen": "desktop"}),
        (b'"w":-' + b"9" * 400, {"revenue": None, "screen": None}),
        (b'"i":' + b"9" * 400, {"revenue": None, "screen": None}),
    ],
)
def test_out_of_range_numbers_in_hits_are_dropped_not_500(
    live_server: LiveServer, extra: bytes, stored: dict[str, Any]
) -> None:
    live_server.add_site("example.com")
    body = b"{" + PAGE + b"," + extra + b"}"
    with live_server.client() as http:
        response = http.post("/api/event", content=body)
    assert (response.status_code, response.text) == (202, "ok")
    rows = live_server.rows("SELECT revenue, screen FROM events")
    assert rows == [stored]


def test_hostile_server_events_get_400_with_the_reason(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("example.com", owner)
    http = world.bearer(world.key(owner, site, ("events:write",)))
    head = b'{"event_name":"signup","site_id":"' + site.encode() + b'",'
    cases = [
        (b'{"event_name":"sign\xffup"}', "the body is not valid JSON"),
        (head + b'"metadata":{"a":' + DEEP + b"}}", "the body is not valid JSON"),
        (
            head + b'"revenue":"1e999999999","currency":"EUR"}',
            "revenue: not a number below 10^12 in size: '1e999999999'",
        ),
        (head + b'"timestamp":1e306}', "timestamp: epoch milliseconds beyond the year 9999"),
        (
            head + b'"timestamp":' + b"9" * 400 + b"}",
            "timestamp: epoch milliseconds beyond the year 9999",
        ),
        (
            head + b'"timestamp":"' + b"9" * 400 + b'"}',
            "timestamp: not epoch ms or ISO-8601: '" + "9" * 39 + "...",
        ),
        (head + b'"timestamp":"\\u00b2"}', "timestamp: not epoch ms or ISO-8601: '\u00b2'"),
    ]
    for body, message in cases:
        response = http.post("/api/v1/events", content=body)
        assert response.status_code == 400, body[:60]
        assert response.json() == {"error": {"code": "invalid_request", "message": message}}
    purchase = {"price": 1e306, "currency": "EUR", "site_id": site}
    response = http.post("/api/v1/events/purchase", json=purchase)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "price: the amount must be below 10^12 in the currency's unit"
    )
    assert world.live.rows("SELECT * FROM events") == []


@pytest.mark.parametrize("zone", ["America", "Europe", "a" * 300, "UTC\x00", "zone.tab"])
def test_a_timezone_that_is_no_zone_is_400_on_sites_and_stats(world: World, zone: str) -> None:
    """ "America" is a directory of the zone database (IsADirectoryError), 300 characters are
    too long a file name (OSError), "zone.tab" is a file but no zone (ValueError)."""
    owner = world.user("owner@example.com")
    site = world.site("example.com", owner)
    scopes = ("stats:read", "sites:read", "sites:write")
    http = world.bearer(world.key(owner, None, scopes))
    shown = zone if len(zone) <= 64 else f"{zone[:64]}..."
    error = {"error": {"code": "invalid_request", "message": f"unknown timezone: {shown!r}"}}
    answers = [
        http.post("/api/v1/sites", json={"domain": "other.example", "timezone": zone}),
        http.patch(f"/api/v1/sites/{site}", json={"timezone": zone}),
        http.get("/api/v1/stats/aggregate", params={"site_id": site, "timezone": zone}),
        http.get("/api/v1/analytics", params={"site_id": site, "timezone": zone}),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(400, error)] * 4
    assert [s.timezone for s in world.meta.sites()] == ["UTC"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sites", DEEP),
        ("/api/v1/sites", b'{"domain":"\xff.example"}'),
        ("/api/v1/auth/login", b'{"email":' + DEEP + b"}"),
        ("/api/v1/admin/backup", b'{"dest":"\xff"}'),
    ],
)
def test_json_bodies_litestar_decodes_are_400_when_not_json(
    world: World, path: str, body: bytes
) -> None:
    admin = world.user("admin@example.com", admin=True)
    http = world.bearer(world.jwt(admin.email))
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "the body is not valid JSON"}
    }


def test_a_backup_folder_the_os_refuses_is_400(world: World) -> None:
    """dest.exists() raises OSError (File name too long) rather than answering False."""
    admin = world.user("admin@example.com", admin=True)
    http = world.bearer(world.jwt(admin.email))
    name = "x" * 5000
    response = http.post("/api/v1/admin/backup", json={"dest": name})
    assert response.status_code == 400
    path = str(world.live.settings.backup_root / name)
    assert response.json() == {
        "error": {
            "code": "invalid_request",
            "message": f"{path[:200]}...: not a usable backup folder (File name too long)",
        }
    }
