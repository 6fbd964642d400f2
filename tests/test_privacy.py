"""Privacy (DSAR) over real HTTP: export, deletion (raw + rollups), status, access."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.ingest.identity import user_key
from app.query.rollup import build_rollups
from app.storage import privacy
from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import CHROME_UA, start_live_server, stop_live_server
from tests.stats_env import STORAGES


@pytest.fixture(name="storage", params=STORAGES)
def storage_fixture(request: pytest.FixtureRequest) -> str:
    """Every privacy test runs on both events stores (issue #24)."""
    return str(request.param)


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path, storage: str) -> Iterator[World]:
    # Jobs off: the test decides when rollups are built.
    with running_world(auth_settings(tmp_path, run_jobs=False, storage=storage)) as found:
        yield found


def _ts(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def _send(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/api/v1/events", json=body)
    assert response.status_code == 202, response.text


def _setup(world: World) -> tuple[str, date, httpx.Client]:
    """A site with alice's and bob's server-side events and a browser event, 3 days ago
    (plus alice today); returns (site id, that day, a client with every scope)."""
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    token = world.key(owner, site, ("events:write", "privacy:write"))
    http = world.bearer(token)
    past = datetime.now(UTC).date() - timedelta(days=3)
    for body in (
        {"name": "pageview", "url": "https://shop.test/a", "user_id": "alice-42",
         "timestamp": _ts(past, 10)},
        {"name": "signup", "url": "https://shop.test/a", "user_id": "alice-42",
         "props": {"plan": "secret-plan-value"}, "timestamp": _ts(past, 10)},
        {"name": "pageview", "url": "https://shop.test/b", "user_id": "bob-7",
         "timestamp": _ts(past, 11)},
        {"name": "pageview", "url": "https://shop.test/c", "ip": "8.8.8.8",
         "timestamp": _ts(past, 12)},
        {"name": "pageview", "url": "https://shop.test/today", "user_id": "alice-42"},
    ):  # fmt: skip
        _send(http, body)
    return site, past, http


def _wait_done(http: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = http.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _rollup_rows(world: World, site: str, day: date) -> list[tuple[Any, ...]]:
    return [
        tuple(r.values())
        for r in world.live.rows(
            "SELECT * EXCLUDE (site_id) FROM daily_stats WHERE site_id = ? AND day = ?"
            " ORDER BY property, value NULLS FIRST",
            [site, day],
        )
    ]


def test_export_is_sanitized_and_finds_only_that_user(world: World) -> None:
    site, past, http = _setup(world)
    response = http.get(f"/api/v1/sites/{site}/privacy/user/alice-42")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["count"] == 3 and body["truncated"] is False
    assert "Browser events are anonymous" in body["note"]
    names = sorted((e["date"], e["name"]) for e in body["events"])
    today = datetime.now(UTC).date().isoformat()
    assert names == [(past.isoformat(), "pageview"), (past.isoformat(), "signup"),
                     (today, "pageview")]  # fmt: skip
    signup = next(e for e in body["events"] if e["name"] == "signup")
    assert signup["property_keys"] == ["plan"]
    text = response.text
    assert "secret-plan-value" not in text  # property values: keys only
    assert CHROME_UA not in text and "Mozilla" not in text  # no raw user agent
    assert "8.8.8.8" not in text and "127.0.0.1" not in text  # no IP
    assert "alice-42" not in text  # the raw user id is not stored, so never exported
    for event in body["events"]:
        assert not {"ip", "user_agent", "props", "visitor_id", "user_key", "user_id"} & set(event)
    # The stored rows carry the pseudonym only.
    keys = world.live.rows("SELECT DISTINCT user_key FROM events WHERE user_key IS NOT NULL")
    site_secret = world.live.services.sites.by_id(site).secret  # type: ignore[union-attr]
    assert {r["user_key"] for r in keys} == {
        user_key(site_secret, "alice-42"),
        user_key(site_secret, "bob-7"),
    }
    nobody = http.get(f"/api/v1/sites/{site}/privacy/user/nobody")
    assert nobody.json()["count"] == 0


def test_user_ids_with_slashes_are_found_sent_as_is_or_encoded(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("slash.test", owner)
    http = world.bearer(world.key(owner, site, ("events:write", "privacy:write")))
    for user in ("tenant/alice", "tenant/bob", "tenant"):
        _send(http, {"name": "pageview", "url": "https://slash.test/a", "user_id": user})
    for path in ("tenant/alice", "tenant%2Falice"):
        for prefix in (f"/api/v1/sites/{site}", f"/v1/projects/{site}"):
            response = http.get(f"{prefix}/privacy/user/{path}")
            assert response.status_code == 200, response.text
            assert response.json()["count"] == 1, path
    deleted = http.delete(f"/api/v1/sites/{site}/privacy/user/tenant%2Fbob")
    assert deleted.status_code == 202, deleted.text
    status = f"/api/v1/sites/{site}/privacy/requests/{deleted.json()['request_id']}"
    assert _wait_done(http, status)["status"] == "done"
    left = world.live.rows("SELECT count(*) AS n FROM events WHERE site_id = ?", [site])
    assert left == [{"n": 2}]
    assert http.get(f"/api/v1/sites/{site}/privacy/user/tenant").json()["count"] == 1


def test_delete_removes_raw_events_and_rebuilds_rollups(world: World) -> None:
    site, past, http = _setup(world)
    store = world.live.services.events
    build_rollups(store, site, "UTC", [past])
    before = _rollup_rows(world, site, past)
    [totals] = world.live.rows(
        "SELECT visitors, pageviews, events FROM daily_stats"
        " WHERE site_id = ? AND day = ? AND property = ''",
        [site, past],
    )
    assert totals == {"visitors": 3, "pageviews": 3, "events": 4}

    response = http.delete(f"/api/v1/sites/{site}/privacy/user/alice-42")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["request_id"].startswith("pr_")
    assert set(body) == {"request_id", "status"}
    status = _wait_done(http, f"/api/v1/sites/{site}/privacy/requests/{body['request_id']}")
    assert status["status"] == "done", status
    assert status["events_deleted"] == 3
    assert status["days_rebuilt"] == 1
    assert status["days_not_rebuilt"] == []
    assert status["created_at"] and status["finished_at"]

    secret = world.live.services.sites.by_id(site).secret  # type: ignore[union-attr]
    gone = world.live.rows(
        "SELECT count(*) AS n FROM events WHERE user_key = ?", [user_key(secret, "alice-42")]
    )
    assert gone == [{"n": 0}]
    assert world.live.rows("SELECT count(*) AS n FROM events") == [{"n": 2}]
    after = _rollup_rows(world, site, past)
    assert after != before
    [totals] = world.live.rows(
        "SELECT visitors, pageviews, events FROM daily_stats"
        " WHERE site_id = ? AND day = ? AND property = ''",
        [site, past],
    )
    assert totals == {"visitors": 2, "pageviews": 2, "events": 2}
    # A fresh computation from raw gives the same rollup rows.
    build_rollups(store, site, "UTC", [past])
    assert _rollup_rows(world, site, past) == after
    [day] = world.live.rows(
        "SELECT events FROM rollup_days WHERE site_id = ? AND day = ?", [site, past]
    )
    assert day == {"events": 2}
    export = http.get(f"/api/v1/sites/{site}/privacy/user/alice-42").json()
    assert export["count"] == 0
    bob = http.get(f"/api/v1/sites/{site}/privacy/user/bob-7").json()
    assert bob["count"] == 1
    # Neither the events file nor the request queue holds the raw user id.
    store.checkpoint()
    for path in Path(world.live.settings.data_dir).rglob("*"):
        if path.is_file():
            assert b"alice-42" not in path.read_bytes(), path


def test_pruned_day_is_reported_not_rebuilt(world: World) -> None:
    site, past, http = _setup(world)
    store = world.live.services.events
    build_rollups(store, site, "UTC", [past])
    store.delete_rolled_up_raw(site, past + timedelta(days=1))  # prune the day
    _send(http, {"name": "late", "user_id": "alice-42", "timestamp": _ts(past, 13)})
    rolled = _rollup_rows(world, site, past)
    request_id = http.delete(f"/api/v1/sites/{site}/privacy/user/alice-42").json()["request_id"]
    status = _wait_done(http, f"/api/v1/sites/{site}/privacy/requests/{request_id}")
    assert status["status"] == "done"
    assert status["events_deleted"] == 2  # the late one and today's
    assert status["days_rebuilt"] == 0
    assert status["days_not_rebuilt"] == [past.isoformat()]
    assert _rollup_rows(world, site, past) == rolled  # a pruned day's rollup is kept


def test_scopes_and_ownership(world: World) -> None:
    site, _, http = _setup(world)
    other = world.user("other@example.com")
    other_site = world.site("other.test", other)
    other_key = world.bearer(world.key(other, None, ("privacy:write", "stats:read")))
    for method in ("GET", "DELETE"):
        response = other_key.request(method, f"/api/v1/sites/{site}/privacy/user/u")
        assert response.status_code == 404, response.text
    assert other_key.get(f"/api/v1/sites/{other_site}/privacy/user/u").status_code == 200

    owner_user = world.user("reader@example.com")
    reader_site = world.site("reader.test", owner_user)
    events_only = world.bearer(world.key(owner_user, reader_site, ("events:write",)))
    stats_only = world.bearer(world.key(owner_user, reader_site, ("stats:read",)))
    path = f"/api/v1/sites/{reader_site}/privacy/user/u"
    assert events_only.get(path).status_code == 403
    assert events_only.delete(path).status_code == 403
    assert stats_only.get(path).status_code == 200
    denied = stats_only.delete(path)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
    oa = events_only.delete(f"/v1/projects/{reader_site}/privacy/user/u")
    assert oa.status_code == 403
    assert set(oa.json()) == {"error", "message"} and oa.json()["error"] == "forbidden"

    # A request id is only visible through its own site.
    request_id = http.delete(f"/api/v1/sites/{site}/privacy/user/u").json()["request_id"]
    _wait_done(http, f"/api/v1/sites/{site}/privacy/requests/{request_id}")
    assert (
        other_key.get(f"/api/v1/sites/{other_site}/privacy/requests/{request_id}").status_code
        == 404
    )
    assert http.get(f"/api/v1/sites/{site}/privacy/requests/pr_nope").status_code == 404
    assert world.live.client().get(path).status_code == 401


def test_openanalytics_paths(world: World) -> None:
    site, _, http = _setup(world)
    export = http.get(f"/v1/projects/{site}/privacy/user/bob-7")
    assert export.status_code == 200 and export.json()["count"] == 1
    response = http.delete(f"/v1/projects/{site}/privacy/user/bob-7")
    assert response.status_code == 202
    request_id = response.json()["request_id"]
    status = _wait_done(http, f"/v1/projects/{site}/privacy/requests/{request_id}")
    assert status["status"] == "done" and status["events_deleted"] == 1
    missing = http.get(f"/v1/projects/{site}/privacy/requests/pr_missing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "privacy request not found"}


def test_queued_request_resumes_after_restart(tmp_path: Path, storage: str) -> None:
    settings = auth_settings(tmp_path, run_jobs=False, storage=storage)
    live = start_live_server(settings)
    world = World(live)
    try:
        site, _, http = _setup(world)
        secret = live.services.sites.by_id(site).secret  # type: ignore[union-attr]
        # Queued but never started (as if the server stopped right after the 202).
        queued = privacy.create_request(live.services.meta, site, user_key(secret, "bob-7"), None)
        http.close()
    finally:
        stop_live_server(live)
    live = start_live_server(settings)
    try:
        deadline = time.monotonic() + 15
        while True:
            found = privacy.get_request(live.services.meta, queued.id)
            assert found is not None
            if found.status == "done" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found.status == "done" and found.events_deleted == 1
        assert live.rows("SELECT count(*) AS n FROM events") == [{"n": 4}]
    finally:
        stop_live_server(live)


def test_deleted_user_leaves_no_byte_in_the_events_file(world: World) -> None:
    """DuckDB keeps a deleted row's bytes in its free blocks: the job rewrites the file.
    ClickHouse's lightweight DELETE only masks rows: the job rewrites the parts."""
    owner = world.user("owner@example.com")
    site = world.site("bytes.test", owner)
    http = world.bearer(world.key(owner, site, ("events:write", "privacy:write")))
    past = datetime.now(UTC).date() - timedelta(days=2)
    for i in range(40):
        for user, tag in (("carol-9", "carolonly-zq8"), ("dave-3", "daveonly-zq8")):
            _send(http, {"name": "pageview", "url": f"https://bytes.test/{tag}-{i}",
                         "user_id": user, "timestamp": _ts(past, 10)})  # fmt: skip
    store = world.live.services.events
    if store.engine == "clickhouse":
        _deleted_user_leaves_no_row_in_the_parts(world, http, site)
        return
    events_file = Path(world.live.settings.data_dir) / "events.duckdb"
    store.checkpoint()
    assert b"carolonly-zq8" in events_file.read_bytes()  # the needle can be found
    deleted = http.delete(f"/api/v1/sites/{site}/privacy/user/carol-9")
    assert deleted.status_code == 202, deleted.text
    status = _wait_done(
        http, f"/api/v1/sites/{site}/privacy/requests/{deleted.json()['request_id']}"
    )
    assert (status["status"], status["events_deleted"]) == ("done", 40)
    store.checkpoint()
    blob = events_file.read_bytes()
    assert b"carolonly-zq8" not in blob
    assert b"daveonly-zq8" in blob
    left = world.live.rows("SELECT count(*) AS n FROM events WHERE site_id = ?", [site])
    assert left == [{"n": 40}]


def _deleted_user_leaves_no_row_in_the_parts(world: World, http: httpx.Client, site: str) -> None:
    def stored(tag: str) -> int:  # masked rows too: what the parts still hold
        rows = world.live.services.events.query(
            "SELECT count() FROM events WHERE pathname LIKE {p0:String}"
            " SETTINGS apply_deleted_mask = 0",
            [f"%{tag}%"],
        )
        return int(rows[0][0])

    assert (stored("carolonly-zq8"), stored("daveonly-zq8")) == (40, 40)
    deleted = http.delete(f"/api/v1/sites/{site}/privacy/user/carol-9")
    assert deleted.status_code == 202, deleted.text
    status = _wait_done(
        http, f"/api/v1/sites/{site}/privacy/requests/{deleted.json()['request_id']}"
    )
    assert (status["status"], status["events_deleted"]) == ("done", 40)
    assert (stored("carolonly-zq8"), stored("daveonly-zq8")) == (0, 40)
