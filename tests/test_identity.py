"""Visitor and session rules, through the real pipeline on real files, with set clocks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client
from app.services import Services
from tests.conftest import CHROME_UA, IPHONE_UA

ALICE = Client("81.2.69.160", CHROME_UA)
BOB = Client("8.8.8.8", IPHONE_UA)


def us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def run(settings: Settings, body: Callable[[Services], Awaitable[None]]) -> None:
    async def main() -> None:
        svc = Services(settings)
        await svc.start()
        try:
            await body(svc)
        finally:
            await svc.stop()

    asyncio.run(main())


def pageview(site_id: str, path: str = "/") -> Hit:
    return Hit(name="pageview", url=f"https://example.com{path}", site_id=site_id)


def ids(svc: Services) -> list[tuple[str, int, int]]:
    rows = svc.events.query("SELECT pathname, visitor_id, session_id FROM events ORDER BY ts")
    return [(r[0], r[1], r[2]) for r in rows]


def test_same_visitor_and_session_when_same_ip_and_ua_within_30_minutes(settings: Settings) -> None:
    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com").id
        t0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        await svc.ingest.record(pageview(site, "/a"), ALICE, us(t0))
        await svc.ingest.record(pageview(site, "/b"), ALICE, us(t0 + timedelta(minutes=29)))
        await svc.ingest.record(pageview(site, "/c"), ALICE, us(t0 + timedelta(minutes=58)))
        await svc.ingest.record(pageview(site, "/d"), BOB, us(t0 + timedelta(minutes=58)))
        rows = ids(svc)
        assert [r[0] for r in rows] == ["/a", "/b", "/c", "/d"]
        assert rows[0][1] == rows[1][1] == rows[2][1] != rows[3][1]
        assert rows[0][2] == rows[1][2] == rows[2][2] != rows[3][2]
        entry = svc.events.query("SELECT entry_page FROM events ORDER BY ts")
        assert [e[0] for e in entry] == ["/a", "/a", "/a", "/d"]

    run(settings, body)


def test_new_session_when_31_minutes_of_silence(settings: Settings) -> None:
    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com").id
        t0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        await svc.ingest.record(pageview(site, "/a"), ALICE, us(t0))
        await svc.ingest.record(pageview(site, "/b"), ALICE, us(t0 + timedelta(minutes=31)))
        (_, v1, s1), (_, v2, s2) = ids(svc)
        assert v1 == v2
        assert s1 != s2
        entry = svc.events.query("SELECT entry_page FROM events ORDER BY ts")
        assert [e[0] for e in entry] == ["/a", "/b"]

    run(settings, body)


def test_new_visitor_and_session_after_local_midnight(settings: Settings) -> None:
    """Kathmandu is UTC+05:45: its midnight is 18:15 UTC. Two hits four minutes apart,
    either side of it, are two visitors and two sessions on two local days."""

    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com", timezone="Asia/Kathmandu").id
        zone = ZoneInfo("Asia/Kathmandu")
        today = datetime.now(zone).date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=zone)
        await svc.ingest.record(pageview(site, "/late"), ALICE, us(midnight - timedelta(minutes=2)))
        await svc.ingest.record(
            pageview(site, "/early"), ALICE, us(midnight + timedelta(minutes=2))
        )
        rows = svc.events.query("SELECT day, visitor_id, session_id FROM events ORDER BY ts")
        assert [r[0] for r in rows] == [today - timedelta(days=1), today]
        assert rows[0][1] != rows[1][1]
        assert rows[0][2] != rows[1][2]
        assert midnight.astimezone(UTC).strftime("%H:%M") == "18:15"

    run(settings, body)


def test_sites_never_share_a_visitor_id_for_the_same_person(settings: Settings) -> None:
    async def body(svc: Services) -> None:
        first = svc.meta.add_site("example.com").id
        second = svc.meta.add_site("example.org").id
        t0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        await svc.ingest.record(pageview(first), ALICE, us(t0))
        await svc.ingest.record(pageview(second), ALICE, us(t0))
        (_, v1, s1), (_, v2, s2) = ids(svc)
        assert v1 != v2
        assert s1 != s2

    run(settings, body)


def test_sessions_continue_after_a_restart(settings: Settings) -> None:
    """The session table is rebuilt from the last 30 minutes of events on start."""
    state: dict[str, object] = {}

    async def first(svc: Services) -> None:
        state["site"] = site = svc.meta.add_site("example.com").id
        await svc.ingest.record(pageview(site, "/a"), ALICE)

    async def second(svc: Services) -> None:
        site = str(state["site"])
        await svc.ingest.record(pageview(site, "/b"), ALICE)
        await svc.ingest.record(pageview(site, "/c"), BOB)
        (_, v1, s1), (_, v2, s2), (_, _, s3) = ids(svc)
        assert (v1, s1) == (v2, s2)
        assert s3 == s1 + 1  # session ids keep increasing after a restart
        entry = svc.events.query("SELECT entry_page FROM events ORDER BY ts")
        assert [e[0] for e in entry] == ["/a", "/a", "/c"]

    run(settings, first)
    run(settings, second)


def test_no_ip_or_user_agent_is_written_anywhere_in_the_data_dir(settings: Settings) -> None:
    ip = "203.0.113.77"
    ua = CHROME_UA.replace("130.0.0.0", "130.0.6723.91")

    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com").id
        for i in range(50):
            await svc.ingest.record(pageview(site, f"/p{i}"), Client(ip, ua))

    run(settings, body)
    data = Path(settings.data_dir)
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"events.duckdb", "meta.sqlite3"}
    needles = [ip.encode(), ua.encode(), b"130.0.6723.91", ip.encode("utf-16-le")]
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path}"
    assert os.path.getsize(data / "events.duckdb") > 0


def test_salts_older_than_yesterday_are_destroyed_by_the_sweep(settings: Settings) -> None:
    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com", timezone="America/Los_Angeles").id
        today = datetime.now(ZoneInfo("America/Los_Angeles")).date()
        for back in range(4):
            svc.meta.salt(site, (today - timedelta(days=back)).isoformat())
        svc.ingest.expire(us(datetime.now(UTC)))
        with svc.meta._lock:
            days = [r[0] for r in svc.meta._db.execute("SELECT day FROM salts ORDER BY day")]
        assert days == [(today - timedelta(days=1)).isoformat(), today.isoformat()]

    run(settings, body)


def test_backfilled_visit_stays_one_session_when_the_sweep_runs_between_its_events(
    settings: Settings,
) -> None:
    """Issue #20, item 11: server-side events sent with past timestamps (a backfill) are
    one visit while 30 minutes of event time separate them, however late they arrive; the
    minute sweep used to drop the open session (its last event is hours old) and split it."""

    async def body(svc: Services) -> None:
        site = svc.meta.add_site("example.com").id
        t0 = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0)
        await svc.ingest.record(pageview(site, "/a"), ALICE, us(t0))
        svc.ingest.expire(us(datetime.now(UTC)))  # the sweep, between two backfilled events
        await svc.ingest.record(pageview(site, "/b"), ALICE, us(t0 + timedelta(minutes=20)))
        svc.ingest.expire(us(datetime.now(UTC)))
        await svc.ingest.record(pageview(site, "/c"), ALICE, us(t0 + timedelta(minutes=51)))
        rows = ids(svc)
        assert [r[0] for r in rows] == ["/a", "/b", "/c"]
        assert rows[0][2] == rows[1][2] != rows[2][2]  # /c: 31 minutes after /b, a new visit
        entry = svc.events.query("SELECT entry_page FROM events ORDER BY ts")
        assert [e[0] for e in entry] == ["/a", "/a", "/c"]
        # Once the wall clock has been silent for 30 minutes too, the session goes.
        assert svc.ingest.sessions.sweep(us(datetime.now(UTC) + timedelta(minutes=31))) == 1

    run(settings, body)
