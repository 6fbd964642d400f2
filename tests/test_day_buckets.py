"""Daily, weekly and monthly buckets read from the stored `day` column equal the buckets
computed from ts in the zone (UTC, New York with its DST change, Kathmandu +05:45), events
a microsecond either side of local midnight included; a `timezone` override is bucketed
from ts and matches the answer key; meta.filtered_bot_traffic comes with the answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.query import rollup, run
from app.query.compile import compile_query
from app.query.compile_terms import uses_day_column
from app.query.model import Filter, Order, Query
from app.query.periods import day_range
from app.query.run import QueryTimeout, run_query_sync
from tests import stats_reference as ref
from tests.conftest import CHROME_UA
from tests.stats_env import ALL_METRICS, Env, bounds

SITES = [
    *ref.SITES,
    ("edge-ny.example", "America/New_York"),
    ("edge-ktm.example", "Asia/Kathmandu"),
]
# Local wall-clock instants around midnight (and New York's skipped 02:00-03:00 hour).
EDGE_DAYS = [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 7), date(2026, 3, 8)]
EDGE_TIMES = [(0, 0, 0, 0), (0, 0, 0, 1), (1, 59, 59, 999_999), (3, 0, 0, 0), (23, 59, 59, 999_999)]
SKIPS_PINGS = ("visitors", "pageviews", "events", "visits", "bounce_rate", "visit_duration")
WIDE = (*ALL_METRICS, "custom_events", "views_per_visit")
# Event metrics alone: the one-SELECT plan (compile._compile_flat).
FLAT = ("visitors", "pageviews", "events", "custom_events", "revenue", "time_on_page")


@pytest.fixture(scope="module")
def edged(env: Env) -> Env:
    """Two more sites with pageviews (and engagement pings) right at local midnights."""
    svc = env.live.services
    rows = []
    for n, (domain, tz) in enumerate(SITES[len(ref.SITES) :]):
        site = svc.meta.add_site(domain, timezone=tz)
        env.ids[domain] = site.id
        zone = ZoneInfo(tz)
        for d in EDGE_DAYS:
            for i, (h, m, s, us) in enumerate(EDGE_TIMES):
                local = datetime(d.year, d.month, d.day, h, m, s, us, tzinfo=zone)
                ts_us = int(local.timestamp()) * 1_000_000 + us
                client = Client(f"81.2.69.{n * 10 + i + 1}", CHROME_UA)
                for ping in (False, True):
                    hit = Hit(
                        name="engagement" if ping else "pageview",
                        url=f"https://{domain}/p{i}",
                        site_id=site.id,
                        engagement_ms=900 if ping else None,
                        scroll_depth=40 if ping else None,
                    )
                    row = svc.ingest.build(hit, site, client, ts_us)
                    assert not isinstance(row, Drop), (local, ping, row)
                    rows.append(row)
    svc.events.append(rows)
    return env


def query(env: Env, domain: str, first: date, last: date, **kw: Any) -> Query:
    tz = dict(SITES)[domain]
    kw.setdefault("order_by", (Order("time", False),))
    return Query(
        site_id=env.ids[domain],
        period=day_range("custom", ZoneInfo(tz), first, last),
        site_timezone=tz,
        **kw,
    )


def both_paths(env: Env, q: Query) -> tuple[run.Result, run.Result]:
    """The answer from the day column and from ts (the same question without a site zone)."""
    assert uses_day_column(q)
    by_ts = msgspec.structs.replace(q, site_timezone=None)
    assert not uses_day_column(by_ts)
    # The ts path shifts ts by the zone's offsets; the day path never touches ts for buckets.
    assert "to_seconds" not in compile_query(q).sql
    assert "to_seconds" in compile_query(by_ts).sql
    store = env.live.services.events
    return run_query_sync(store, q), run_query_sync(store, by_ts)


RANGES = [
    (date(2026, 2, 20), date(2026, 3, 20)),  # New York's DST change (2026-03-08) inside
    (date(2026, 1, 1), date(2026, 3, 20)),  # ytd: month and week buckets cut by the range
    (date(2026, 3, 8), date(2026, 3, 8)),  # one 23-hour day
]


@pytest.mark.parametrize("domain", [d for d, _ in SITES])
@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize(
    "metrics",
    [SKIPS_PINGS, WIDE, FLAT, ("visitors", "pageviews")],
    ids=["skips-pings", "wide", "flat", "flat-skips-pings"],
)
@pytest.mark.parametrize("days", RANGES, ids=["dst", "ytd", "dst-day"])
def test_day_column_buckets_equal_ts_buckets(
    edged: Env, domain: str, interval: str, metrics: tuple[str, ...], days: tuple[date, date]
) -> None:
    q = query(edged, domain, *days, metrics=metrics, dimensions=(f"time:{interval}",))
    by_day, by_ts = both_paths(edged, q)
    assert by_day.rows == by_ts.rows
    assert by_day.total_rows == by_ts.total_rows
    assert any(row["visitors"] for row in by_day.rows)


@pytest.mark.parametrize("domain", [d for d, _ in SITES])
def test_day_column_with_filters_goals_and_a_property(edged: Env, domain: str) -> None:
    first, last = RANGES[0]
    shapes: list[dict[str, Any]] = [
        {"metrics": SKIPS_PINGS, "filters": (Filter("is", "page", ("/", "/p*")),)},
        {
            "metrics": ("visitors", "conversion_rate"),
            "filters": (Filter("is", "event", ("Signup", "pageview")),),
        },
        {"metrics": ("visitors", "pageviews"), "dimensions": ("device", "time:week")},
    ]
    for shape in shapes:
        shape.setdefault("dimensions", ("time:day",))
        by_day, by_ts = both_paths(edged, query(edged, domain, first, last, **shape))
        assert by_day.rows == by_ts.rows, shape
        assert by_day.total_rows == by_ts.total_rows, shape


@pytest.mark.parametrize("domain", ["ny.example", "ktm.example"])
@pytest.mark.parametrize(
    "shape",
    [
        {},
        {"filters": (Filter("is", "page", ("/blog/*",)),)},
        {"dimensions": ("time:day",)},
        {"dimensions": ("time:hour",), "days": (date(2026, 3, 8), date(2026, 3, 9))},
        {"dimensions": ("page",), "limit": 3, "offset": 1},
        {"dimensions": ("source",), "order_by": (Order("revenue", True),)},
        {"dimensions": ("event",), "filters": (Filter("is_not", "country", ("US",)),)},
        {"dimensions": ("prop:plan", "time:week")},
    ],
)
def test_the_one_select_plan_equals_the_cte_plan(
    edged: Env, domain: str, shape: dict[str, Any]
) -> None:
    """Event metrics alone get one SELECT; asking visits too takes the CTE plan: the event
    metrics' rows, order and counts are the same either way."""
    shape = dict(shape)
    first, last = shape.pop("days", RANGES[0])
    shape.setdefault("order_by", (Order("visitors", True),))
    flat = query(edged, domain, first, last, metrics=FLAT, **shape)
    ctes = msgspec.structs.replace(flat, metrics=(*FLAT, "visits"))
    assert compile_query(flat).sql.startswith("SELECT")
    assert compile_query(ctes).sql.startswith("WITH")
    store = edged.live.services.events
    a, b = run_query_sync(store, flat), run_query_sync(store, ctes)
    assert a.rows == [{k: v for k, v in row.items() if k != "visits"} for row in b.rows]
    assert a.total_rows == b.total_rows
    assert a.rows


def test_midnight_events_land_on_their_local_day(edged: Env) -> None:
    # Each edge day has 5 visitors, 4 of them after its midnight and 1 before the next.
    for domain in ("edge-ny.example", "edge-ktm.example"):
        q = query(
            edged, domain, date(2026, 2, 27), date(2026, 3, 9), metrics=("visitors", "pageviews")
        )
        q = msgspec.structs.replace(q, dimensions=("time:day",))
        by_day, by_ts = both_paths(edged, q)
        counts = {row["time"].date(): row["visitors"] for row in by_day.rows if row["visitors"]}
        assert counts == dict.fromkeys(EDGE_DAYS, 5)
        assert by_day.rows == by_ts.rows


@pytest.mark.parametrize(
    ("domain", "override"),
    [
        ("utc.example", "Asia/Kathmandu"),
        ("ktm.example", "America/New_York"),
        ("ny.example", "UTC"),
    ],
)
@pytest.mark.parametrize("interval", ["day", "week"])
def test_timezone_override_buckets_from_ts(
    edged: Env, domain: str, override: str, interval: str
) -> None:
    zone = ZoneInfo(override)
    first, last = RANGES[0]
    wanted = ["visitors", "pageviews", "events"]
    q = query(edged, domain, first, last, metrics=tuple(wanted))
    q = msgspec.structs.replace(
        q, period=day_range("custom", zone, first, last), dimensions=(f"time:{interval}",)
    )
    assert not uses_day_column(q)
    body = edged.ok(
        "timeseries",
        site_id=edged.ids[domain],
        period="custom",
        interval=interval,
        timezone=override,
        metrics=",".join(wanted),
        **{"from": first.isoformat(), "to": last.isoformat()},
    )
    assert body["meta"]["timezone"] == override
    step = timedelta(days=1 if interval == "day" else 7)
    start = first - timedelta(days=first.weekday() if interval == "week" else 0)
    starts = []
    while start <= last:
        starts.append(datetime(start.year, start.month, start.day))
        start += step
    scope = ref.in_range(edged.events, domain, *bounds(first, last, zone))
    expected = ref.buckets(scope, zone, starts, interval, [], wanted)
    assert body["results"] == [
        {"date": s.replace(tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), **r}
        for s, r in zip(starts, expected, strict=True)
    ]
    assert any(r["visitors"] for r in expected)
    # The same question in the site's own zone reads the day column.
    assert uses_day_column(msgspec.structs.replace(q, site_timezone=override))


@pytest.fixture(scope="module")
def bots(edged: Env) -> int:
    """Bot hits on ny.example: two days of the range asked below, one outside it."""
    epoch = date(1970, 1, 1)
    site = edged.ids["ny.example"]
    hits = [(date(2026, 3, 1), 3), (date(2026, 3, 18), 4), (date(2026, 3, 19), 50)]
    edged.live.services.events.append([], [(site, (d - epoch).days, n) for d, n in hits])
    return 7


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("aggregate", {"metrics": "visitors,pageviews"}),  # raw, one statement
        ("aggregate", {"metrics": "visitors,visits,bounce_rate"}),  # the one-pass session plan
        ("timeseries", {"metrics": "visitors", "interval": "day"}),
        ("timeseries", {"metrics": "visitors", "interval": "hour", "timezone": "UTC"}),
        ("breakdown", {"property": "page", "limit": "2"}),
        ("breakdown", {"property": "source", "limit": "2", "page_number": "99"}),  # no rows
    ],
)
def test_bot_traffic_comes_with_the_answer(
    edged: Env, bots: int, path: str, params: dict[str, str]
) -> None:
    site = edged.ids["ny.example"]
    inside = {"period": "custom", "from": "2026-03-01", "to": "2026-03-18"}
    if params.get("interval") == "hour":
        inside = {"period": "custom", "from": "2026-03-18", "to": "2026-03-18"}
        bots = 4
    body = edged.ok(path, site_id=site, **inside, **params)
    assert body["meta"]["filtered_bot_traffic"] == bots
    empty = {"period": "custom", "from": "2026-04-01", "to": "2026-04-02"}
    assert edged.ok(path, site_id=site, **empty, **params)["meta"]["filtered_bot_traffic"] == 0
    v2 = edged.live.client().post(
        "/api/v2/query",
        json={
            "site_id": site,
            "metrics": ["visitors"],
            "date_range": ["2026-03-01", "2026-03-18"],
        },
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["meta"]["filtered_bot_traffic"] == 7


def test_a_query_past_its_deadline_is_interrupted(
    edged: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = edged.live.services.events
    monkeypatch.setattr(run, "QUERY_TIMEOUT_S", 0.2)
    numbers = (
        "range(1000000000000) t(i)"
        if store.engine == "duckdb"
        else "(SELECT number AS i FROM numbers(1000000000000))"
    )
    with pytest.raises(QueryTimeout):
        run._execute(store, f"SELECT count(*) FROM {numbers} WHERE i % 7 = 3", [])
    # Finished queries are never interrupted later, and the watchdog keeps working.
    assert run._execute(store, "SELECT 1", []) == [(1,)]
    with pytest.raises(QueryTimeout):
        run._execute(store, f"SELECT count(*) FROM {numbers} WHERE i % 5 = 1", [])
    assert run._execute(store, "SELECT 2", []) == [(2,)]


def test_bot_traffic_comes_with_a_rollup_answer_too(edged: Env, bots: int) -> None:
    """Last in this module: ny.example's days are rolled up from here on."""
    svc = edged.live.services
    site, tz = edged.ids["ny.example"], dict(SITES)["ny.example"]
    days = rollup.days_to_build(svc.events, site, date(2026, 3, 20))
    rollup.build_rollups(svc.events, site, tz, days)
    inside = {"period": "custom", "from": "2026-03-01", "to": "2026-03-18"}
    for path, params in (("aggregate", {}), ("timeseries", {"interval": "week"})):
        body = edged.ok(path, site_id=site, metrics="visitors", **inside, **params)
        assert (body["meta"]["from_rollups"], body["meta"]["filtered_bot_traffic"]) == (True, bots)
