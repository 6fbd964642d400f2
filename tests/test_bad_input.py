"""Hostile bodies at the public endpoints: never a 5xx, never a partial row."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
