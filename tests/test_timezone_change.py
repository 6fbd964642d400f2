"""A site's timezone changes after data came in: its stored days (the `day` column, daily
rollups) move to the new zone's local days, over real HTTP and across a restart, without
losing or double-counting an event, even next to days whose raw events were pruned. On
both events stores (issue #24)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.jobs.lifecycle import prune_sites, rollup_sites
from app.services import Services
from app.storage.events import EventStore
from app.storage.store import Store
from tests.accounts_fixtures import World, auth_settings
from tests.conftest import CHROME_UA, ROOT, read_any, start_live_server, stop_live_server
from tests.stats_env import STORAGES
from tests.test_ui_forms import sign_in_ui

TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=8)  # a UTC day: events on FIRST .. FIRST + 4
UTC_DAYS = [FIRST + timedelta(days=i) for i in range(5)]
# Five events a UTC day. In Kathmandu (+05:45) the last two (after 18:15 UTC) fall on the
# next local day; in New York (-05:00 in winter, -04:00 in summer) the first one (01:00
# UTC) falls on the day before.
HOURS = [(1, 0), (12, 0), (17, 0), (18, 30), (23, 0)]


def stamps() -> list[datetime]:
    return [datetime(d.year, d.month, d.day, h, m, tzinfo=UTC) for d in UTC_DAYS for h, m in HOURS]


def kathmandu_day(ts: datetime) -> date:
    """By hand: +05:45 all year, so from 18:15 UTC on it is the next day there."""
    return ts.date() + timedelta(days=1 if (ts.hour, ts.minute) >= (18, 15) else 0)


@pytest.fixture(name="world", params=STORAGES)
def world_without_jobs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    live = start_live_server(auth_settings(tmp_path, run_jobs=False, storage=request.param))
    try:
        yield World(live)
    finally:
        stop_live_server(live)


def ingest(svc: Services, site_id: str, when: list[datetime], first_ip: int = 1) -> None:
    """One page view per instant, each from its own address (its own visitor)."""
    site = svc.sites.by_id(site_id)
    assert site is not None
    rows = []
    for i, ts in enumerate(when, first_ip):
        hit = Hit(name="pageview", url=f"https://{site.domain}/p{i}", site_id=site_id)
        client = Client(f"198.51.{i // 250}.{i % 250 + 1}", CHROME_UA)
        row = svc.ingest.build(hit, site, client, int(ts.timestamp() * 1_000_000))
        assert not isinstance(row, Drop), row
        rows.append(row)
    svc.events.append(rows)


def site_with_events(world: World, domain: str) -> tuple[Services, str, list[datetime]]:
    """A UTC site owned by owner@example.com, with a page view at each of stamps()."""
    owner = world.user("owner@example.com")
    site_id = world.site(domain, owner)
    svc = world.live.services
    when = stamps()
    ingest(svc, site_id, when)
    return svc, site_id, when


def wait_aligned(svc: Services, site_id: str, timeout: float = 15.0) -> None:
    """Re-dating runs in the background after the change: wait until it recorded the zone."""
    deadline = time.monotonic() + timeout
    while True:
        site = next(s for s in svc.meta.sites() if s.id == site_id)
        if site.day_zone == site.timezone:
            return
        assert time.monotonic() < deadline, "the site's events were not re-dated in time"
        time.sleep(0.02)


def stored_days(svc: Services, site_id: str) -> list[tuple[datetime, date]]:
    return [
        (ts.replace(tzinfo=UTC), day)
        for ts, day in read_any(
            svc.events, "SELECT ts, day FROM events WHERE site_id = ? ORDER BY ts", [site_id]
        )
    ]


def day_totals(svc: Services, site_id: str) -> dict[date, tuple[int, int, int]]:
    """Each rolled-up day's (visitors, pageviews) from its totals row, and its event count."""
    rows = read_any(
        svc.events,
        "SELECT s.day, s.visitors, s.pageviews, d.events FROM daily_stats s"
        " JOIN (SELECT * FROM rollup_days) d USING (site_id, day)"
        " WHERE site_id = ? AND property = ''",
        [site_id],
    )
    return {day: (v, pv, n) for day, v, pv, n in rows}


def series(
    http: httpx.Client, site_id: str, first: date, last: date
) -> tuple[dict[str, Any], bool]:
    response = http.get(
        "/api/v1/stats/timeseries",
        params={
            "site_id": site_id,
            "period": "custom",
            "from": str(first),
            "to": str(last),
            "metrics": "visitors,pageviews",
            "interval": "day",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    points = {p["date"]: (p["visitors"], p["pageviews"]) for p in body["results"]}
    return points, body["meta"]["from_rollups"]


def utc_label(day: date, offset: timedelta) -> str:
    """The series label of a local day: its midnight as a UTC instant."""
    instant = datetime(day.year, day.month, day.day) - offset
    return instant.isoformat(timespec="milliseconds") + "Z"


def test_timezone_change_moves_days_and_rollups_over_http(world: World) -> None:
    svc, site_id, when = site_with_events(world, "zones.test")
    assert rollup_sites(svc.events, svc.sites.all()).done == {site_id: 5}
    with world.bearer(world.jwt("owner@example.com")) as http:
        before, rolled = series(http, site_id, FIRST, UTC_DAYS[-1])
        assert rolled
        assert before == {utc_label(d, timedelta(0)): (5, 5) for d in UTC_DAYS}

        patched = http.patch(f"/api/v1/sites/{site_id}", json={"timezone": "Asia/Kathmandu"})
        assert patched.status_code == 200, patched.text
        wait_aligned(svc, site_id)
        assert patched.json()["site"]["timezone"] == "Asia/Kathmandu"

        # Every stored day is now the Kathmandu day; 2 of 5 events a day moved.
        assert stored_days(svc, site_id) == [(ts, kathmandu_day(ts)) for ts in when]
        # Rollups of days with raw events are dropped, to be rebuilt in the new zone.
        assert read_any(svc.events, "SELECT count(*) FROM rollup_days")[0][0] == 0
        assert read_any(svc.events, "SELECT count(*) FROM daily_rollups")[0][0] == 0

        kathmandu = timedelta(hours=5, minutes=45)
        last = UTC_DAYS[-1] + timedelta(days=1)
        expected = {utc_label(FIRST, kathmandu): (3, 3)}
        expected |= {utc_label(d, kathmandu): (5, 5) for d in UTC_DAYS[1:]}
        expected[utc_label(last, kathmandu)] = (2, 2)
        raw, rolled = series(http, site_id, FIRST, last)
        assert (raw, rolled) == (expected, False)

        assert rollup_sites(svc.events, svc.sites.all()).done == {site_id: 6}
        assert series(http, site_id, FIRST, last) == (expected, True)


def test_events_after_the_change_get_the_new_zones_day(world: World) -> None:
    """The pipeline's cache of a site's current local day follows the new zone at once."""
    owner = world.user("owner@example.com")
    site_id = world.site("after.test", owner)
    svc = world.live.services
    evening = datetime(FIRST.year, FIRST.month, FIRST.day, 20, 0, tzinfo=UTC)
    ingest(svc, site_id, [evening])  # caches FIRST's UTC bounds for the site
    with world.bearer(world.jwt("owner@example.com")) as http:
        patched = http.patch(f"/api/v1/sites/{site_id}", json={"timezone": "Asia/Kathmandu"})
        assert patched.status_code == 200, patched.text
        wait_aligned(svc, site_id)
    ingest(svc, site_id, [evening + timedelta(minutes=5)], first_ip=2)
    next_day = FIRST + timedelta(days=1)
    assert [day for _, day in stored_days(svc, site_id)] == [next_day, next_day]


def test_a_change_in_the_ui_form_moves_the_days_too(world: World) -> None:
    svc, site_id, when = site_with_events(world, "form.test")
    http, csrf = sign_in_ui(world, "owner@example.com")
    saved = http.post(
        f"/ui/sites/{site_id}/settings",
        data={
            "csrf_token": csrf,
            "domain": "form.test",
            "name": "Form",
            "timezone": "Asia/Kathmandu",
        },
    )
    assert saved.status_code in (302, 303), saved.text
    wait_aligned(svc, site_id)
    assert stored_days(svc, site_id) == [(ts, kathmandu_day(ts)) for ts in when]


def test_pruned_days_keep_their_rollups_and_no_event_is_lost(world: World) -> None:
    """New York is behind UTC: the 01:00 UTC event of the first raw day moves onto the last
    pruned day, whose rollup can't be rebuilt from raw: it is added to it instead."""
    svc, site_id, when = site_with_events(world, "pruned.test")
    assert rollup_sites(svc.events, svc.sites.all()).done == {site_id: 5}
    # Prune the first two UTC days (raw_days counts back from today, today included).
    now = datetime.now(UTC)
    raw_days = (now.date() - UTC_DAYS[2]).days + 1
    assert prune_sites(svc.events, svc.sites.all(), raw_days, now).done == {site_id: 10}

    def rollup_rows(day: date) -> list[tuple[Any, ...]]:
        return read_any(
            svc.events,
            "SELECT * FROM daily_stats WHERE site_id = ? AND day = ? ORDER BY ALL",
            [site_id, day],
        )

    first_pruned = rollup_rows(UTC_DAYS[0])
    assert len(first_pruned) > 10

    with world.bearer(world.jwt("owner@example.com")) as http:
        patched = http.patch(f"/api/v1/sites/{site_id}", json={"timezone": "America/New_York"})
        assert patched.status_code == 200, patched.text
        wait_aligned(svc, site_id)

    # By hand: 01:00 UTC is the day before in New York, the other hours the same day.
    def new_york_day(ts: datetime) -> date:
        return ts.date() - timedelta(days=1 if ts.hour < 4 else 0)

    assert new_york_day(when[10]) == UTC_DAYS[1]  # onto the last pruned day
    assert stored_days(svc, site_id) == [(ts, new_york_day(ts)) for ts in when[11:]]
    assert rollup_rows(UTC_DAYS[0]) == first_pruned
    assert day_totals(svc, site_id) == {UTC_DAYS[0]: (5, 5, 5), UTC_DAYS[1]: (6, 6, 6)}

    rollup_sites(svc.events, svc.sites.all())
    assert day_totals(svc, site_id) == {
        UTC_DAYS[0]: (5, 5, 5),
        UTC_DAYS[1]: (6, 6, 6),
        UTC_DAYS[2]: (5, 5, 5),
        UTC_DAYS[3]: (5, 5, 5),
        UTC_DAYS[4]: (4, 4, 4),
    }
    # Every event counted exactly once over the whole range, from rollups.
    with world.bearer(world.jwt("owner@example.com")) as http:
        response = http.get(
            "/api/v1/stats/aggregate",
            params={
                "site_id": site_id,
                "period": "custom",
                "from": str(FIRST - timedelta(days=1)),
                "to": str(UTC_DAYS[-1]),
                "metrics": "visitors,pageviews",
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["from_rollups"] is True
    assert body["metrics"] == {"visitors": 25, "pageviews": 25}


def test_until_applied_no_zone_trusts_the_stored_days(world: World) -> None:
    """Between a change and its re-dating, new events get the new zone's day and older ones
    keep the old one's: answers in either zone bucket `ts`, never the mixed `day` column."""
    svc, site_id, when = site_with_events(world, "pending.test")
    svc.meta.update_site(site_id, timezone="Asia/Kathmandu")  # saved, not yet applied
    svc.sites.reload()
    evening = datetime(FIRST.year, FIRST.month, FIRST.day, 20, 0, tzinfo=UTC)
    ingest(svc, site_id, [evening], first_ip=100)
    days = dict(stored_days(svc, site_id))
    assert days[evening] == FIRST + timedelta(days=1)  # the new zone's day already
    assert days[when[4]] == FIRST  # 23:00 UTC, stored before the change: the old zone's
    with world.bearer(world.jwt("owner@example.com")) as http:
        response = http.get(
            "/api/v1/stats/timeseries",
            params={
                "site_id": site_id,
                "from": str(FIRST),
                "to": str(FIRST + timedelta(days=1)),
                "timezone": "UTC",
                "metrics": "pageviews",
                "interval": "day",
            },
        )
    assert response.status_code == 200, response.text
    points = {p["date"]: p["pageviews"] for p in response.json()["results"]}
    utc = timedelta(0)
    assert points == {utc_label(FIRST, utc): 6, utc_label(FIRST + timedelta(days=1), utc): 5}


def pending_change(
    tmp_path: Path, domain: str, storage: str
) -> tuple[Settings, str, list[datetime]]:
    """A stopped data dir whose site's new zone (Kathmandu) was saved but not applied (the
    server stopped, or crashed, in between)."""
    settings = auth_settings(tmp_path, run_jobs=False, storage=storage)
    live = start_live_server(settings)
    try:
        svc = live.services
        site_id = svc.meta.add_site(domain).id
        svc.sites.reload()
        when = stamps()
        ingest(svc, site_id, when)
        svc.meta.update_site(site_id, timezone="Asia/Kathmandu")  # no re-dating
        assert {day for _, day in stored_days(svc, site_id)} == set(UTC_DAYS)
    finally:
        stop_live_server(live)
    return settings, site_id, when


@pytest.mark.parametrize("storage", STORAGES)
def test_a_change_not_yet_applied_is_applied_on_start(tmp_path: Path, storage: str) -> None:
    """The next start re-dates the events before taking new ones."""
    settings, site_id, when = pending_change(tmp_path, "restart.test", storage)
    live = start_live_server(settings)
    try:
        svc = live.services
        assert stored_days(svc, site_id) == [(ts, kathmandu_day(ts)) for ts in when]
        assert svc.sites.by_id(site_id).day_zone == "Asia/Kathmandu"  # type: ignore[union-attr]
    finally:
        stop_live_server(live)


@pytest.mark.parametrize("storage", STORAGES)
def test_rollups_are_rebuilt_soon_after_the_change(tmp_path: Path, storage: str) -> None:
    """With jobs on, the change moves the next rollup run to now."""
    live = start_live_server(auth_settings(tmp_path, storage=storage))  # first run in 20 s
    world = World(live)
    try:
        owner = world.user("owner@example.com")
        site_id = world.site("soon.test", owner)
        svc = live.services
        ingest(svc, site_id, stamps())
        with world.bearer(world.jwt("owner@example.com")) as http:
            patched = http.patch(f"/api/v1/sites/{site_id}", json={"timezone": "Asia/Kathmandu"})
            assert patched.status_code == 200, patched.text
        wait_aligned(svc, site_id)
        deadline = time.monotonic() + 15
        days: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline:
            days = read_any(
                svc.events, "SELECT day FROM rollup_days WHERE site_id = ? ORDER BY day", [site_id]
            )
            if days:
                break
            time.sleep(0.1)
        last = UTC_DAYS[-1] + timedelta(days=1)
        assert [d for (d,) in days] == [*UTC_DAYS, last]
    finally:
        for client in world.clients:
            client.close()
        stop_live_server(live)


@pytest.mark.parametrize("storage", STORAGES)
def test_avocet_rollup_by_hand_applies_a_pending_change_first(tmp_path: Path, storage: str) -> None:
    """Server stopped with a change saved but not applied: `avocet rollup` re-dates the
    events, then builds the rollups in the new zone."""
    settings, site_id, when = pending_change(tmp_path, "cli.test", storage)

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", settings.data_dir, "rollup", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AVOCET_STORAGE": storage},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"done": {site_id: 6}, "failed": {}}
    store: Store
    if storage == "clickhouse":
        from app.storage.clickhouse.store import ClickHouseEventStore

        store = ClickHouseEventStore(settings.clickhouse_dsn)
    else:
        store = EventStore(Path(settings.data_dir) / "events.duckdb")
    try:
        found = read_any(store, "SELECT ts, day FROM events ORDER BY ts")
        assert [(ts.replace(tzinfo=UTC), day) for ts, day in found] == [
            (ts, kathmandu_day(ts)) for ts in when
        ]
        days = [d for (d,) in read_any(store, "SELECT day FROM rollup_days ORDER BY day")]
        assert days == [*UTC_DAYS, UTC_DAYS[-1] + timedelta(days=1)]
    finally:
        store.close()


@pytest.mark.skipif(importlib.util.find_spec("chdb") is None, reason="no clickhouse extra")
def test_a_re_dating_cut_short_on_clickhouse_is_finished_once(tmp_path: Path) -> None:
    """ClickHouse re-dates in steps (app/storage/clickhouse/redate.py): cut
    short at any of them (a site each, one server), the next run finishes it in the zone
    it was for, even when the site has moved to yet another zone since, and no event is
    lost or counted twice."""
    from app.query import rollup
    from app.storage.clickhouse import redate
    from app.storage.clickhouse.store import ClickHouseEventStore

    live = start_live_server(auth_settings(tmp_path, run_jobs=False, storage="clickhouse"))
    world = World(live)
    merge = redate._merge_arrivals
    svc, when = live.services, stamps()
    try:
        owner = world.user("owner@example.com")
        for cut in ("before_merge", "after_merge", "before_move"):
            site_id = world.site(f"{cut.replace('_', '-')}.test", owner)
            ingest(svc, site_id, when)
            site = [svc.sites.by_id(site_id)]
            assert rollup_sites(svc.events, site).done == {site_id: 5}  # type: ignore[arg-type]
            now = datetime.now(UTC)
            raw_days = (now.date() - UTC_DAYS[2]).days + 1
            pruned = prune_sites(svc.events, site, raw_days, now)  # type: ignore[arg-type]
            assert pruned.done == {site_id: 10}

            def cut_merge(store: ClickHouseEventStore, *args: Any, cut: str = cut) -> None:
                if cut == "after_merge":
                    merge(store, *args)
                raise RuntimeError("cut short")

            def cut_move(store: ClickHouseEventStore, stage: str) -> None:
                raise RuntimeError("cut short")

            with pytest.MonkeyPatch.context() as patch:
                if cut == "before_move":
                    patch.setattr(redate, "_move_stage", cut_move)
                else:
                    patch.setattr(redate, "_merge_arrivals", cut_merge)
                with pytest.raises(RuntimeError, match="cut short"):
                    rollup.redate(svc.events, site_id, "America/New_York")
            assert svc.events.pending_redate(site_id) == "America/New_York"

            # Meanwhile the site moved on to Kathmandu: New York's is finished first.
            rollup.redate(svc.events, site_id, "Asia/Kathmandu")
            assert svc.events.pending_redate(site_id) is None
            # By hand: New York moved 01:00 UTC of the first raw day onto the last pruned
            # day (its rollup: 5 + 1); the other raw events are on their Kathmandu days,
            # once each.
            assert stored_days(svc, site_id) == [(ts, kathmandu_day(ts)) for ts in when[11:]]
            totals = day_totals(svc, site_id)
            assert totals == {UTC_DAYS[0]: (5, 5, 5), UTC_DAYS[1]: (6, 6, 6)}, cut
        tables = read_any(
            svc.events,
            "SELECT name FROM system.tables WHERE name LIKE 'redate%' AND name != 'redates'",
        )
        assert tables == []
    finally:
        for client in world.clients:
            client.close()
        stop_live_server(live)
