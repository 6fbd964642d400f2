"""Minute buckets (native `interval=minute`, v2 `time:minute`) for ranges of one day or
less, on visits with known timestamps; the realtime view's graph is built on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.query.periods import day_range
from app.query.run import bucket_starts
from tests.accounts_fixtures import World, world_fixture  # noqa: F401
from tests.browser.dashboard_data import Visit, load, pv
from tests.conftest import CHROME_UA, IPHONE_UA

DAY = (datetime.now(UTC) - timedelta(days=3)).date()  # inside the raw window


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=UTC)


# By hand: 10:05 -> 2 visitors, 3 pageviews; 10:07 -> 1, 1; 10:29 -> 1, 1 (UTC).
VISITS = [
    Visit(at(10, 5, 10), "81.2.69.1", CHROME_UA, None, [pv(0, "/"), pv(40, "/a"), pv(110, "/b")]),
    Visit(at(10, 5, 30), "81.2.69.2", IPHONE_UA, None, [pv(0, "/")]),
    Visit(at(10, 29, 59), "81.2.69.3", CHROME_UA, None, [pv(0, "/c")]),
]


class Env:
    def __init__(self, world: World, sites: dict[str, str], token: str) -> None:
        self.sites = sites
        self.http = world.bearer(token)

    def native(self, site: str, **params: str) -> Any:
        answer = self.http.get(
            "/api/v1/stats/timeseries", params={"site_id": self.sites[site], **params}
        )
        return answer.status_code, answer.json()

    def v2(self, **body: Any) -> Any:
        answer = self.http.post("/api/v2/query", json=body, headers={"User-Agent": CHROME_UA})
        return answer.status_code, answer.json()


@pytest.fixture
def env(world: World) -> Iterator[Env]:
    owner = world.user("owner@example.com")
    sites = {
        "utc.example": world.site("utc.example", owner),
        "ktm.example": world.site("ktm.example", owner),
    }
    world.live.services.meta.execute(
        "UPDATE sites SET timezone = 'Asia/Kathmandu' WHERE id = ?", (sites["ktm.example"],)
    )
    world.live.services.sites.reload()
    for site_id in sites.values():
        load(world.live, site_id, VISITS)
    yield Env(world, sites, world.key(owner, None))


def test_v2_minute_series_counts_each_minute_when_asked(env: Env) -> None:
    status, body = env.v2(
        site_id="utc.example",
        metrics=["visitors", "pageviews"],
        date_range=[f"{DAY}T10:00:00", f"{DAY}T10:29:59"],
        dimensions=["time:minute"],
        include={"time_labels": True},
    )
    assert status == 200, body
    assert body["results"] == [
        {"dimensions": [f"{DAY} 10:05:00"], "metrics": [2, 3]},
        {"dimensions": [f"{DAY} 10:07:00"], "metrics": [1, 1]},
        {"dimensions": [f"{DAY} 10:29:00"], "metrics": [1, 1]},
    ]
    assert body["meta"]["time_labels"] == [f"{DAY} 10:{m:02d}:00" for m in range(30)]


def test_native_minute_series_has_every_minute_of_the_day_when_asked(env: Env) -> None:
    status, body = env.native(
        "utc.example",
        period="custom",
        **{"from": DAY.isoformat(), "to": DAY.isoformat()},
        interval="minute",
        metrics="visitors,pageviews",
    )
    assert status == 200, body
    points = body["results"]
    assert len(points) == 1440
    assert points[0]["date"] == f"{DAY}T00:00:00.000Z"
    busy = {p["date"]: (p["visitors"], p["pageviews"]) for p in points if p["visitors"]}
    assert busy == {
        f"{DAY}T10:05:00.000Z": (2, 3),
        f"{DAY}T10:07:00.000Z": (1, 1),
        f"{DAY}T10:29:00.000Z": (1, 1),
    }
    assert body["meta"]["from_rollups"] is False


def test_minute_buckets_follow_the_site_zone_when_offset_is_not_whole_hours(env: Env) -> None:
    # Kathmandu is UTC+05:45: its day starts at 18:15 UTC the day before.
    local_day = (at(10, 5) + timedelta(hours=5, minutes=45)).date()
    status, body = env.native(
        "ktm.example",
        period="custom",
        **{"from": local_day.isoformat(), "to": local_day.isoformat()},
        interval="minute",
        metrics="visitors",
    )
    assert status == 200, body
    first = datetime.combine(local_day, datetime.min.time()) - timedelta(hours=5, minutes=45)
    assert body["results"][0]["date"] == first.isoformat(timespec="milliseconds") + "Z"
    busy = {p["date"]: p["visitors"] for p in body["results"] if p["visitors"]}
    assert busy == {
        f"{DAY}T10:05:00.000Z": 2,
        f"{DAY}T10:07:00.000Z": 1,
        f"{DAY}T10:29:00.000Z": 1,
    }


def test_minute_interval_refused_when_range_is_longer_than_a_day(env: Env) -> None:
    status, body = env.native("utc.example", period="7d", interval="minute")
    assert status == 400
    assert body["error"]["message"] == (
        "interval=minute is only available for periods of one day or less"
    )
    status, body = env.v2(
        site_id="utc.example", metrics=["visitors"], date_range="7d", dimensions=["time:minute"]
    )
    assert status == 400
    assert body["error"] == (
        "Invalid dimensions: time:minute is only allowed for a date_range of one day or less"
    )
    status, body = env.native("utc.example", period="24h", interval="minute", metrics="visitors")
    assert status == 200, body
    assert len(body["results"]) in (1440, 1441)  # the rolling 24 h touch 1,441 minutes


@pytest.mark.parametrize(
    ("day", "minutes"),
    [(date(2026, 3, 8), 23 * 60), (date(2026, 11, 1), 24 * 60), (date(2026, 6, 1), 24 * 60)],
)
def test_minute_buckets_are_each_local_minute_once_when_dst_changes(
    day: date, minutes: int
) -> None:
    from zoneinfo import ZoneInfo

    period = day_range("custom", ZoneInfo("America/New_York"), day, day)
    starts = bucket_starts(period, "minute")
    assert len(starts) == len(set(starts)) == minutes
    assert starts[0] == datetime(day.year, day.month, day.day)
