"""The stats test environment: one live server per test module, loaded through the real
pipeline with the answer key's events (tests/stats_reference.py), its clock pinned to NOW."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from tests import stats_reference as ref
from tests.conftest import LiveServer, free_port, start_live_server, stop_live_server

ALL_METRICS = [
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "revenue",
    "time_on_page",
    "scroll_depth",
]


class Env:
    def __init__(self, live: LiveServer, events: list[ref.Event], ids: dict[str, str]) -> None:
        self.live, self.events, self.ids = live, events, ids

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.live.url}/api/v1/stats/{path}", params=params, timeout=30)

    def ok(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


# Every test of the stats surfaces runs on both events stores (issue #24): DuckDB, and
# ClickHouse's own engine (chdb) where the clickhouse extra is installed (make dev, CI).
STORAGES = [
    "duckdb",
    pytest.param(
        "clickhouse",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
        ),
    ),
]


@pytest.fixture(scope="module", params=STORAGES)
def env(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Env]:
    data = tmp_path_factory.mktemp("stats") / "data"
    settings = Settings(
        data_dir=str(data),
        port=free_port(),
        open_stats_on_loopback=True,
        run_jobs=False,
        storage=request.param,
    )
    live = start_live_server(settings)
    svc = live.services
    svc.clock = lambda: ref.NOW
    events = ref.generate()
    sites = {domain: svc.meta.add_site(domain, timezone=tz) for domain, tz in ref.SITES}
    rows = []
    for e in events:
        hit = Hit(
            name=e.name,
            url=e.url,
            site_id=sites[e.site].id,
            referrer=e.referrer,
            props=tuple(e.props.items()),
            revenue=(e.revenue, "EUR") if e.revenue else None,
            interactive=e.interactive,
            engagement_ms=e.engagement_ms,
            scroll_depth=e.scroll_depth,
        )
        row = svc.ingest.build(hit, sites[e.site], Client(e.ip, e.ua), int(e.ts.timestamp() * 1e6))
        assert not isinstance(row, Drop), (e, row)
        rows.append(row)
    svc.events.append(rows)
    try:
        yield Env(live, events, {d: s.id for d, s in sites.items()})
    finally:
        stop_live_server(live)


def preset_days(preset: str, today: date) -> tuple[date, date]:
    """The days each preset covers, restated from SPEC §1."""
    return {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "7d": (today - timedelta(days=6), today),
        "30d": (today - timedelta(days=29), today),
        "90d": (today - timedelta(days=89), today),
        "12m": (today - timedelta(days=364), today),
        "wtd": (today - timedelta(days=today.weekday()), today),
        "mtd": (today.replace(day=1), today),
        "ytd": (today.replace(month=1, day=1), today),
        "month": (
            (today.replace(day=1) - timedelta(days=1)).replace(day=1),
            today.replace(day=1) - timedelta(days=1),
        ),
    }[preset]


def bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    nxt = last + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)


def scope(env: Env, domain: str, first: date, last: date) -> list[ref.Event]:
    start, end = bounds(first, last, ZoneInfo(dict(ref.SITES)[domain]))
    return ref.in_range(env.events, domain, start, end)
