"""A range that cuts a visit between its page view and its engagement ping: the ping alone
is in range. Pings are not events of their own, so that visit is no visit of the range,
and a page seen only on the ping is no row of a breakdown, whatever the plan the compiler
picks (one SELECT, sessions, or the CTE plan). Expected numbers are worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from tests.conftest import CHROME_UA, LiveServer, free_port, start_live_server, stop_live_server

# A UTC site asked about a Kathmandu (+05:45) day: the day starts at 18:15 UTC the day
# before, between visitor A's page view (18:14:30) and ping (18:15:30).
DAY = datetime.now(UTC).date() - timedelta(days=3)
EVE = DAY - timedelta(days=1)


def at(day: Any, h: int, m: int, s: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC)


EVENTS = [
    # visitor A: the page view the day before (in Kathmandu), its ping on DAY
    ("198.51.100.1", at(EVE, 18, 14, 30), "pageview", "/a", None),
    ("198.51.100.1", at(EVE, 18, 15, 30), "engagement", "/a", 20_000),
    # visitor B on DAY: two page views 120 s apart, a ping between them
    ("198.51.100.2", at(DAY, 6, 0), "pageview", "/b", None),
    ("198.51.100.2", at(DAY, 6, 0, 30), "engagement", "/b", 10_000),
    ("198.51.100.2", at(DAY, 6, 2), "pageview", "/c", None),
]
RANGE = {"period": "custom", "from": DAY.isoformat(), "to": DAY.isoformat()}
KATHMANDU = {**RANGE, "timezone": "Asia/Kathmandu"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    data: Path = tmp_path_factory.mktemp("edges") / "data"
    settings = Settings(
        data_dir=str(data), port=free_port(), open_stats_on_loopback=True, run_jobs=False
    )
    server = start_live_server(settings)
    svc = server.services
    site = svc.meta.add_site("edges.example", timezone="UTC")
    rows = []
    for ip, ts, name, path, ms in EVENTS:
        hit = Hit(name=name, url=f"https://edges.example{path}", site_id=site.id, engagement_ms=ms)
        row = svc.ingest.build(hit, site, Client(ip, CHROME_UA), int(ts.timestamp() * 1e6))
        assert not isinstance(row, Drop), row
        rows.append(row)
    svc.events.append(rows)
    try:
        yield server, site.id
    finally:
        stop_live_server(server)


def ask(live: tuple[LiveServer, str], path: str, **params: str) -> dict[str, Any]:
    server, site_id = live
    response = httpx.get(
        f"{server.url}/api/v1/stats/{path}", params={"site_id": site_id, **params}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_ping_alone_is_no_visit(live: tuple[LiveServer, str]) -> None:
    metrics = "visitors,visits,pageviews,bounce_rate,visit_duration"
    body = ask(live, "aggregate", metrics=metrics, **KATHMANDU)
    # Only B's visit: 2 page views, 120 s, no bounce. Counting A's ping as a visit would
    # give 2 visitors, 2 visits, a 50 % bounce rate and 60 s.
    assert body["metrics"] == {
        "visitors": 1,
        "visits": 1,
        "pageviews": 2,
        "bounce_rate": 0,
        "visit_duration": 120,
    }
    # In UTC the whole of A's visit is on EVE: DAY has B alone there too.
    assert ask(live, "aggregate", metrics=metrics, **RANGE)["metrics"]["visits"] == 1


def test_the_page_seen_only_on_the_ping_is_no_row(live: tuple[LiveServer, str]) -> None:
    # time_on_page reads pings (one SELECT over events with pings in it); adding visits
    # takes the CTE plan. Either way /a (A's ping alone) is no row.
    for metrics in ("visitors,pageviews,time_on_page", "visitors,visits,time_on_page"):
        body = ask(live, "breakdown", property="page", metrics=metrics, **KATHMANDU)
        pages = [row["value"] for row in body["results"]]
        assert pages == ["/b", "/c"], (metrics, body)
    body = ask(live, "breakdown", property="page", metrics="time_on_page", **KATHMANDU)
    assert body["results"][0] == {"value": "/b", "time_on_page": 10}


def test_the_ping_alone_is_no_visit_of_a_source(live: tuple[LiveServer, str]) -> None:
    # visit_duration reads pings (sessions plan with pings in the scan).
    body = ask(
        live, "breakdown", property="source", metrics="visitors,visits,visit_duration", **KATHMANDU
    )
    assert [(r["visitors"], r["visits"], r["visit_duration"]) for r in body["results"]] == [
        (1, 1, 120)
    ]
