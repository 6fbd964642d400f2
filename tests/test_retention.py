"""Retention per site: set in the sites API (raw <= total), applied by the prune job: what is
past the total retention is gone (raw and rollups), the rest answers exactly as before, and
answers over expired days say from which day data is kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.jobs.lifecycle import prune_sites, rollup_sites
from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import CHROME_UA

DAYS_BACK = (12, 9, 6, 1)


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, run_jobs=False)) as found:
        yield found


def _ts(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def test_prune_drops_what_is_past_total_retention_when_a_site_sets_one(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.example", owner)
    other = world.site("other.example", owner)
    scopes = ("stats:read", "events:write", "sites:read", "sites:write")
    http = world.bearer(world.key(owner, None, scopes))
    today = datetime.now(UTC).date()
    for target in (site, other):
        for back in DAYS_BACK:
            for i in range(back % 4 + 1):
                body = {
                    "site_id": target,
                    "name": "pageview",
                    "url": f"https://shop.example/p{i}",
                    "ip": f"192.0.2.{i + 1}",
                    "user_agent": CHROME_UA,
                    "timestamp": _ts(today - timedelta(days=back), 9 + i),
                }
                assert http.post("/api/v1/events", json=body).status_code == 202
    svc = world.live.services
    rollup_sites(svc.events, svc.sites.all())

    def daily(target: str, start: date) -> list[dict[str, Any]]:
        params = {"site_id": target, "period": "custom", "metrics": "visitors,pageviews"}
        params |= {"from": str(start), "to": str(today), "interval": "day"}
        r = http.get("/api/v1/stats/timeseries", params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["results"])

    kept_from = today - timedelta(days=9)  # retention_days 10: today and 9 days before
    before_site = daily(site, kept_from)
    before_other = daily(other, today - timedelta(days=14))

    bad = http.patch(f"/api/v1/sites/{site}", json={"raw_retention_days": 30, "retention_days": 10})
    assert (bad.status_code, bad.json()["error"]["message"]) == (
        400,
        "raw_retention_days: can't exceed retention_days (30 > 10): raw events are part of"
        " what is kept",
    )
    ok = http.patch(f"/api/v1/sites/{site}", json={"raw_retention_days": 3, "retention_days": 10})
    assert ok.status_code == 200, ok.text
    shown = ok.json()["site"]
    assert (shown["raw_retention_days"], shown["retention_days"]) == (3, 10)
    assert (shown["retention_is_default"], shown["retained_from"]) == (False, str(kept_from))

    report = prune_sites(svc.events, svc.sites.all(), svc.retention)
    assert report.expired == {
        site: {"events": 1, "daily_rollups": report.expired[site]["daily_rollups"],
               "rollup_days": 1, "bot_counts": 0, "excluded_counts": 0},
    }  # fmt: skip
    assert report.expired[site]["daily_rollups"] > 0
    raw_days = svc.events.query(
        "SELECT DISTINCT day FROM events WHERE site_id = ? ORDER BY day", [site]
    )
    # raw: only the last 3 days' (1 day back); 9 and 6 days back answer from rollups
    assert [r[0] for r in raw_days] == [today - timedelta(days=1)]
    rolled = svc.events.query("SELECT day FROM rollup_days WHERE site_id = ? ORDER BY day", [site])
    assert [r[0] for r in rolled] == [today - timedelta(days=b) for b in (9, 6, 1)]
    assert daily(site, kept_from) == before_site  # the kept days answer exactly as before
    assert daily(other, today - timedelta(days=14)) == before_other  # the other site: as is

    old = http.get(
        "/api/v1/stats/aggregate",
        params={
            "site_id": site,
            "period": "custom",
            "from": str(today - timedelta(days=14)),
            "to": str(today),
        },
    ).json()
    assert old["meta"]["retained_from"] == str(kept_from)
    assert old["metrics"]["visitors"] == 2 + 3 + 2  # 9, 6 and 1 days back; 12 is gone
    recent = http.get("/api/v1/stats/aggregate", params={"site_id": site, "period": "7d"}).json()
    assert "retained_from" not in recent["meta"]


def test_lowering_raw_retention_never_drops_a_day_without_its_rollup(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.example", owner)
    http = world.bearer(world.key(owner, site, ("events:write", "sites:write")))
    today = datetime.now(UTC).date()
    body = {"name": "pageview", "url": "https://shop.example/", "ip": "192.0.2.1",
            "user_agent": CHROME_UA, "timestamp": _ts(today - timedelta(days=5), 10)}  # fmt: skip
    assert http.post("/api/v1/events", json=body).status_code == 202
    assert http.patch(f"/api/v1/sites/{site}", json={"raw_retention_days": 1}).status_code == 200
    svc = world.live.services
    report = prune_sites(svc.events, svc.sites.all(), svc.retention)
    assert report.done == {site: 0}  # not rolled up yet: kept
    assert len(svc.events.query("SELECT * FROM events WHERE site_id = ?", [site])) == 1
