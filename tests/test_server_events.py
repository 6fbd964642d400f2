"""Server-side events over real HTTP: seed bodies, rows in DuckDB, pseudonymous users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings, world_fixture  # noqa: F401
from tests.conftest import start_live_server, stop_live_server

EVENT_ID = re.compile(r"^evt_[0-9a-f]{24}$")

INFINITY_EVENT = {
    "event_name": "user_signup",
    "metadata": {"plan": "premium", "source": "landing_page"},
    "visitor_id": "optional_visitor_id",
    "timestamp": "2024-01-15T10:30:00Z",
}
INFINITY_PURCHASE = {
    "price": 2999,
    "currency": "USD",
    "product_name": "Premium Plan",
    "quantity": 1,
    "metadata": {"billing": "monthly", "category": "subscription"},
    "visitor_id": "optional_visitor_id",
    "timestamp": "2024-01-15T10:30:00Z",
}
OPENANALYTICS_EVENT = {
    "event_type": "conversion",
    "event_name": "purchase",
    "user_id": "sha256_hash_of_user_id",
    "url": "https://example.com/thanks",
    "properties": {"plan": "pro"},
    "revenue": 49.99,
    "currency": "USD",
    "timestamp": 1747000000000,
}


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[World]:
    """The seeds' examples are stamped 2024/2025: a raw window long enough to accept them
    (the default 90 days refuses them; see test_timestamp_is_refused_...)."""
    live = start_live_server(auth_settings(tmp_path, raw_retention_days=3650))
    try:
        yield World(live)
    finally:
        stop_live_server(live)


def accepted(response: httpx.Response) -> None:
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"success", "event_id", "status"}
    assert body["success"] is True and body["status"] == "queued"
    assert EVENT_ID.match(body["event_id"])


def test_seed_examples_land_in_duckdb_when_posted_with_host_swapped(seeded: World) -> None:
    owner = seeded.user("owner@example.com")
    site = seeded.site("example.com", owner)
    token = seeded.key(owner, site, ("events:write",))
    with seeded.bearer(token) as http:
        accepted(http.post("/api/v1/events", json=INFINITY_EVENT))
        accepted(http.post("/api/v1/events/purchase", json=INFINITY_PURCHASE))
        accepted(http.post(f"/v1/projects/{site}/events", json=OPENANALYTICS_EVENT))
    rows = seeded.live.rows(
        "SELECT name, epoch_ms(ts) AS ms, pathname, props, revenue::VARCHAR AS revenue,"
        " currency, user_key FROM events ORDER BY ts, name"
    )
    jan = int(datetime(2024, 1, 15, 10, 30, tzinfo=UTC).timestamp() * 1000)
    assert [(r["name"], r["ms"], r["pathname"], r["revenue"], r["currency"]) for r in rows] == [
        ("purchase", jan, "/", "29.990000", "USD"),
        ("user_signup", jan, "/", None, None),
        ("purchase", 1747000000000, "/thanks", "49.990000", "USD"),
    ]
    assert dict(rows[0]["props"]) == {
        "billing": "monthly", "category": "subscription", "quantity": "1",
        "product_name": "Premium Plan",
    }  # fmt: skip
    assert dict(rows[1]["props"]) == {"plan": "premium", "source": "landing_page"}
    assert dict(rows[2]["props"]) == {"plan": "pro", "event_type": "conversion"}
    keys = {r["user_key"] for r in rows}
    assert rows[0]["user_key"] == rows[1]["user_key"] != rows[2]["user_key"]
    assert None not in keys
    seeded.live.services.events.checkpoint()
    for path in Path(seeded.live.settings.data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert b"sha256_hash_of_user_id" not in blob, path
            assert b"optional_visitor_id" not in blob, path


def test_each_endpoint_takes_its_names_when_bodies_differ(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    token = world.key(owner, None, ALL_SCOPES)  # spans sites: site_id is required
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    with world.bearer(token) as http:
        missing = http.post("/api/v1/events", json={"name": "x", "user_id": "u"})
        accepted(http.post("/api/v1/events", json={
            "site_id": site, "name": "signup", "props": {"a": 1}, "user_id": "u",
            "timestamp": now_ms,
        }))  # fmt: skip
        accepted(http.post("/api/v1/pageviews", json={
            "site_id": site, "url": "https://shop.test/p?utm_source=mail", "user_id": "v",
        }))  # fmt: skip
        accepted(http.post("/api/v1/events/purchase", json={
            "site_id": site, "price": 500, "currency": "jpy", "user_id": "u",
        }))  # fmt: skip
        accepted(http.post("/api/v1/events/purchase", json={
            "site_id": site, "price": 1234, "currency": "KWD", "user_id": "u",
        }))  # fmt: skip
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Missing required parameter: site_id"
    rows = world.live.rows(
        "SELECT name, pathname, utm_source, revenue::VARCHAR AS revenue, currency FROM events"
        " ORDER BY name, revenue"
    )
    assert rows == [
        {"name": "pageview", "pathname": "/p", "utm_source": "mail", "revenue": None,
         "currency": None},
        {"name": "purchase", "pathname": "/", "utm_source": None, "revenue": "1.234000",
         "currency": "KWD"},
        {"name": "purchase", "pathname": "/", "utm_source": None, "revenue": "500.000000",
         "currency": "JPY"},
        {"name": "signup", "pathname": "/", "utm_source": None, "revenue": None,
         "currency": None},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {}}, "event_name: can't be blank"),
        ({"event_name": 5}, "invalid field: Expected `str | null`, got `int` - at `$.event_name`"),
        ({"event_name": "a", "timestamp": "yesterday"}, "timestamp: not epoch ms or ISO-8601"),
        ({"event_name": "a", "revenue": 5}, "currency: a 3-letter ISO 4217 code is required"),
        ({"event_name": "a", "ip": "300.1.1.1"}, "ip: not an IP address: '300.1.1.1'"),
        ({"event_name": "a", "user_agent": "curl/8.5.0"}, "user_agent: looks like a bot"),
    ],
)
def test_bad_body_gets_400_naming_the_field_when_posted(
    world: World, body: dict[str, object], message: str
) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    with world.bearer(world.key(owner, site, ("events:write",))) as http:
        response = http.post("/api/v1/events", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith(message)


def test_timestamp_is_refused_when_outside_the_accepted_window(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    now = datetime.now(UTC)
    with world.bearer(world.key(owner, site, ("events:write",))) as http:
        future = http.post("/api/v1/events", json={
            "event_name": "a", "user_id": "u", "timestamp": (now + timedelta(hours=1)).isoformat(),
        })  # fmt: skip
        old = http.post(f"/v1/projects/{site}/events", json={
            "event_name": "a", "user_id": "u", "timestamp": INFINITY_EVENT["timestamp"],
        })  # fmt: skip
        ok = http.post("/api/v1/events", json={
            "event_name": "a", "user_id": "u", "timestamp": (now - timedelta(days=89)).isoformat(),
        })  # fmt: skip
    assert future.status_code == 400
    assert future.json()["error"]["message"] == "timestamp: more than 300 seconds in the future"
    assert old.status_code == 400  # OpenAnalytics' envelope on its own path
    assert old.json() == {
        "error": "invalid_request",
        "message": "timestamp: older than the 90-day raw event window",
    }
    accepted(ok)


def test_browser_identity_is_used_when_no_user_id_is_sent(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    with world.bearer(world.key(owner, site, ("events:write",))) as http:
        accepted(http.post("/api/v1/events", json={"event_name": "a", "ip": "8.8.8.8"}))
    [row] = world.live.rows("SELECT browser, country, user_key FROM events")
    assert row == {"browser": "Chrome", "country": "US", "user_key": None}
