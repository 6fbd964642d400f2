"""Daily rollups: the same numbers as raw events, for every shape they answer, in UTC,
New York (DST) and Kathmandu (+05:45); pruning raw days keeps the answers; late events
trigger a rebuild."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from app.ingest.hit import Hit
from app.ingest.pipeline import Client
from app.query import rollup, rollup_answer
from app.query.answer import answer_sync
from app.query.model import Filter, Order, Query
from app.query.periods import day_range
from app.query.render import metrics_of
from app.query.run import first_event_day, run_query_sync
from tests import stats_reference as ref
from tests.conftest import CHROME_UA
from tests.stats_env import Env, preset_days, scope

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "events",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
    "revenue",
    "time_on_page",
    "scroll_depth",
)
BREAKDOWN = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events")


@pytest.fixture(scope="module")
def rolled(env: Env) -> Env:
    svc = env.live.services
    for domain, tz in ref.SITES:
        today = ref.NOW.astimezone(ZoneInfo(tz)).date()
        days = rollup.days_to_build(svc.events, env.ids[domain], today)
        assert len(days) > 50
        rollup.build_rollups(svc.events, env.ids[domain], tz, days)
        assert rollup.days_to_build(svc.events, env.ids[domain], today) == []
    return env


def query(env: Env, domain: str, preset: str, **kw: Any) -> Query:
    tz = dict(ref.SITES)[domain]
    first, last = preset_days(preset, ref.NOW.astimezone(ZoneInfo(tz)).date())
    return Query(
        site_id=env.ids[domain],
        period=day_range(preset, ZoneInfo(tz), first, last),
        site_timezone=tz,
        **kw,
    )


def both(env: Env, q: Query) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    store = env.live.services.events
    from_rollups = answer_sync(store, q)
    assert from_rollups.from_rollups
    raw = run_query_sync(store, q)
    assert from_rollups.total_rows == raw.total_rows

    def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [k for k in rows[0] if k not in q.metrics] if rows else []
        return [{**{k: r[k] for k in keys}, **metrics_of(r, q.metrics)} for r in rows]

    return shown(from_rollups.rows), shown(raw.rows)


@pytest.mark.parametrize("domain", [d for d, _ in ref.SITES])
@pytest.mark.parametrize("preset", ["30d", "90d", "month", "ytd"])
def test_aggregate_from_rollups_equals_raw(rolled: Env, domain: str, preset: str) -> None:
    a, b = both(rolled, query(rolled, domain, preset, metrics=METRICS))
    assert a == b


@pytest.mark.parametrize("domain", [d for d, _ in ref.SITES])
@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_timeseries_from_rollups_equals_raw(rolled: Env, domain: str, interval: str) -> None:
    q = query(
        rolled,
        domain,
        "90d",
        metrics=METRICS,
        dimensions=(f"time:{interval}",),
        order_by=(Order("time", False),),
    )
    a, b = both(rolled, q)
    assert a == b


@pytest.mark.parametrize("domain", [d for d, _ in ref.SITES])
@pytest.mark.parametrize("prop", rollup.ROLLUP_PROPERTIES)
def test_breakdown_from_rollups_equals_raw(rolled: Env, domain: str, prop: str) -> None:
    filters = (Filter("is", "event", (rollup.OUTBOUND,)),) if prop == "exit_link" else ()
    metrics = ("clicks", "visitors") if prop == "exit_link" else BREAKDOWN
    q = query(
        rolled,
        domain,
        "90d",
        metrics=metrics,
        dimensions=(prop,),
        filters=filters,
        order_by=(Order(metrics[0], True),),
        limit=1000,
    )
    a, b = both(rolled, q)
    assert a == b
    paged = msgspec.structs.replace(q, limit=3, offset=2)
    assert both(rolled, paged)[0] == b[2:5]
    past = msgspec.structs.replace(q, limit=3, offset=len(b) + 5)  # total_rows still right
    assert both(rolled, past) == ([], [])


@pytest.mark.parametrize("domain", ["utc.example", "ny.example"])
def test_days_without_rollups_inside_the_range_come_from_raw(rolled: Env, domain: str) -> None:
    """Rolled days on both sides of unrolled ones (a rebuild pending, or one run apart):
    the raw part is exactly those days, one of them alone, two in a run."""
    svc, tz = rolled.live.services, dict(ref.SITES)[domain]
    site = rolled.ids[domain]
    today = ref.NOW.astimezone(ZoneInfo(tz)).date()
    gaps = [today - timedelta(days=d) for d in (3, 5, 6)]
    svc.events.replace_rollups(site, gaps, [], [])
    try:
        shapes: list[dict[str, Any]] = [
            {"metrics": METRICS},
            {"metrics": METRICS, "dimensions": ("time:day",), "order_by": (Order("time", False),)},
            {"metrics": BREAKDOWN, "dimensions": ("source",), "limit": 1000},
            {"metrics": BREAKDOWN, "dimensions": ("page",), "limit": 1000},
        ]
        for shape in shapes:
            a, b = both(rolled, query(rolled, domain, "30d", **shape))
            assert a == b, shape
    finally:
        rollup.build_rollups(svc.events, site, tz, gaps)
    assert rollup.days_to_build(svc.events, site, today) == []


def test_filtered_queries_never_come_from_rollups(rolled: Env) -> None:
    q = query(
        rolled,
        "utc.example",
        "30d",
        metrics=("visitors",),
        filters=(Filter("is", "page", ("/docs",)),),
    )
    assert not rollup_answer.eligible(q)
    assert not answer_sync(rolled.live.services.events, q).from_rollups


def test_api_answers_from_rollups_and_matches_the_answer_key(rolled: Env) -> None:
    first, last = preset_days("30d", ref.NOW.date())
    body = rolled.ok(
        "aggregate", site_id=rolled.ids["utc.example"], metrics="visitors,visits,bounce_rate"
    )
    assert body["meta"]["from_rollups"] is True
    assert body["metrics"] == ref.aggregate(
        scope(rolled, "utc.example", first, last), [], ["visitors", "visits", "bounce_rate"]
    )


def test_pruned_days_still_answer_from_rollups_and_late_events_rebuild(rolled: Env) -> None:
    svc = rolled.live.services
    site, zone = rolled.ids["ny.example"], ZoneInfo("America/New_York")
    today = ref.NOW.astimezone(zone).date()
    q = query(rolled, "ny.example", "90d", metrics=METRICS)
    before = metrics_of(answer_sync(svc.events, q).rows[0], METRICS)
    first = min(svc.events.day_counts(site, None, today))
    cutoff = today - timedelta(days=10)
    would = rollup.prune(svc.events, site, cutoff, dry_run=True)
    assert would > 0
    assert rollup.prune(svc.events, site, cutoff) == would
    assert svc.events.day_counts(site, None, cutoff - timedelta(days=1)) == {}
    assert metrics_of(answer_sync(svc.events, q).rows[0], METRICS) == before
    # period=all still starts on the first day, now a rolled-up one.
    assert first < cutoff
    assert first_event_day(svc.events, site) == first

    # An event on a pruned day (the ingest window refuses them; rollups must not trust
    # that): the day is never rebuilt from the little raw left.
    old = int(ref.NOW.timestamp() * 1e6) - 20 * 86_400 * 1_000_000
    stray = Hit(name="pageview", url="https://ny.example/old", site_id=site)
    site_row = svc.sites.by_id(site)
    assert site_row is not None
    svc.events.append([svc.ingest.build(stray, site_row, Client("81.2.69.98", CHROME_UA), old)])  # type: ignore[list-item]
    assert rollup.days_to_build(svc.events, site, today) == []

    # A late event on a rolled-up day inside the raw window: its count no longer matches,
    # so the day is rebuilt.
    late_day = today - timedelta(days=3)
    ts = int(ref.NOW.timestamp() * 1e6) - 3 * 86_400 * 1_000_000
    hit = Hit(name="pageview", url="https://ny.example/late", site_id=site)
    row = svc.ingest.build(hit, svc.sites.by_id(site), Client("81.2.69.99", CHROME_UA), ts)  # type: ignore[arg-type]
    svc.events.append([row])  # type: ignore[list-item]
    assert rollup.days_to_build(svc.events, site, today) == [late_day]
    rollup.build_rollups(svc.events, site, "America/New_York", [late_day])
    after = metrics_of(answer_sync(svc.events, q).rows[0], METRICS)
    assert after["pageviews"] == before["pageviews"] + 1
    assert after["visits"] == before["visits"] + 1
