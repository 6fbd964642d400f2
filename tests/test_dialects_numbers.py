"""The dialect routers (OpenAnalytics, Zenovay, Ovyxa) give the native API's numbers and the
answer key's (tests/stats_reference.py) on the generated dataset, over real HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests import stats_reference as ref
from tests.stats_env import Env, preset_days, scope

SITE_NAMES = [d for d, _ in ref.SITES]
GROUP_BY = {
    "path": "page",
    "referrer": "referrer",
    "country": "country",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
FROM, TO = "2026-02-10", "2026-03-18"


def get(env: Env, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{env.live.url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def today(domain: str) -> date:
    return ref.NOW.astimezone(ZoneInfo(dict(ref.SITES)[domain])).date()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily(
    env: Env, domain: str, first: date, last: date, wanted: list[str]
) -> list[dict[str, Any]]:
    """The answer key's metrics per local day."""
    starts = [datetime(d.year, d.month, d.day) for d in days(first, last)]
    zone = ZoneInfo(dict(ref.SITES)[domain])
    return ref.buckets(scope(env, domain, first, last), zone, starts, "day", [], wanted)


def renamed(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names[k]: v for k, v in row.items()}


# --- OpenAnalytics ----------------------------------------------------------------------

OA_SESSION = {
    "visits": "sessions",
    "bounce_rate": "bounce_rate",
    "visit_duration": "avg_duration_seconds",
}
OA_PAGEVIEW = {"pageviews": "pageviews", "visitors": "visitors"}


@pytest.mark.parametrize("domain", SITE_NAMES)
@pytest.mark.parametrize(
    ("endpoint", "names"), [("pageviews", OA_PAGEVIEW), ("sessions", OA_SESSION)]
)
def test_openanalytics_totals_match_native_and_reference(
    env: Env, domain: str, endpoint: str, names: dict[str, str]
) -> None:
    site = env.ids[domain]
    body = get(env, f"/v1/projects/{site}/{endpoint}", **{"from": FROM, "to": TO})
    first, last = date.fromisoformat(FROM), date.fromisoformat(TO)
    wanted = list(names)
    expected = ref.aggregate(scope(env, domain, first, last), [], wanted)
    native = env.ok("aggregate", site_id=site, date_from=FROM, date_to=TO, metrics=",".join(wanted))
    assert native["metrics"] == expected
    series = [
        {"date": d.isoformat(), **renamed(row, names)}
        for d, row in zip(days(first, last), daily(env, domain, first, last, wanted), strict=True)
    ]
    assert body == {
        "project_id": site,
        "from": FROM,
        "to": TO,
        "timezone": dict(ref.SITES)[domain],
        **renamed(expected, names),
        "series": series,
    }
    timeseries = env.ok(
        "timeseries", site_id=site, date_from=FROM, date_to=TO, metrics=",".join(wanted)
    )
    assert [{k: p[k] for k in wanted} for p in timeseries["results"]] == [
        {k: p[names[k]] for k in wanted} for p in body["series"]
    ]


@pytest.mark.parametrize("group_by", list(GROUP_BY))
@pytest.mark.parametrize(
    ("endpoint", "names"), [("pageviews", OA_PAGEVIEW), ("sessions", OA_SESSION)]
)
def test_openanalytics_group_by_matches_native_breakdown_and_reference(
    env: Env, group_by: str, endpoint: str, names: dict[str, str]
) -> None:
    domain = "ny.example"
    site = env.ids[domain]
    prop = GROUP_BY[group_by]
    wanted = list(names)
    body = get(
        env, f"/v1/projects/{site}/{endpoint}", group_by=group_by, **{"from": FROM, "to": TO}
    )
    first, last = date.fromisoformat(FROM), date.fromisoformat(TO)
    expected = ref.breakdown(scope(env, domain, first, last), prop, [], wanted)
    native = env.ok(
        "breakdown",
        site_id=site,
        date_from=FROM,
        date_to=TO,
        property=prop,
        metrics=",".join(wanted),
        limit="1000",
    )
    assert native["results"] == expected
    assert body["group_by"] == group_by
    assert body["total_rows"] == len(expected)
    assert body["results"] == [
        {group_by: row["value"], **renamed({k: row[k] for k in wanted}, names)} for row in expected
    ]


def test_openanalytics_defaults_to_the_native_default_period(env: Env) -> None:
    site = env.ids["utc.example"]
    body = get(env, f"/v1/projects/{site}/pageviews")
    first, last = preset_days("30d", today("utc.example"))
    assert (body["from"], body["to"]) == (first.isoformat(), last.isoformat())
    native = env.ok("aggregate", site_id=site, metrics="pageviews,visitors")
    assert {"pageviews": body["pageviews"], "visitors": body["visitors"]} == native["metrics"]


def test_openanalytics_realtime_counts_like_native(env: Env) -> None:
    site = env.ids["utc.example"]
    body = get(env, f"/v1/projects/{site}/realtime", minutes="30")
    native = env.ok("realtime", site_id=site, minutes="30")
    since = ref.NOW - timedelta(minutes=30)
    expected = len({e.visitor for e in env.events if e.site == "utc.example" and e.ts >= since})
    assert native["current_visitors"] == expected
    assert body == {"project_id": site, "active_visitors": expected, "window_minutes": 30}


# --- Zenovay ------------------------------------------------------------------------------

ZV_SUMMARY = {
    "visitors": "unique_visitors",
    "visits": "total_visitors",
    "pageviews": "total_page_views",
    "bounce_rate": "bounce_rate",
    "visit_duration": "avg_session_duration",
}
ZV_RANGE_PRESET = {"7d": "7d", "30d": "30d", "90d": "90d", "1y": "12m"}


@pytest.mark.parametrize("domain", SITE_NAMES)
@pytest.mark.parametrize("range_", list(ZV_RANGE_PRESET))
def test_zenovay_overview_matches_native_and_reference(env: Env, domain: str, range_: str) -> None:
    site = env.ids[domain]
    body = get(env, f"/api/external/v1/analytics/{site}", range=range_)
    first, last = preset_days(ZV_RANGE_PRESET[range_], today(domain))
    wanted = list(ZV_SUMMARY)
    expected = ref.aggregate(scope(env, domain, first, last), [], wanted)
    native = env.ok("aggregate", site_id=site, period=range_, metrics=",".join(wanted))
    assert native["metrics"] == expected
    assert body["success"] is True
    series = [
        {"date": d.isoformat(), **renamed(row, ZV_SUMMARY)}
        for d, row in zip(days(first, last), daily(env, domain, first, last, wanted), strict=True)
    ]
    assert body["data"] == {
        "website": {"id": site, "domain": domain, "name": domain},
        "time_range": range_,
        "date_range": {"start": first.isoformat(), "end": last.isoformat()},
        "timezone": dict(ref.SITES)[domain],
        "summary": renamed(expected, ZV_SUMMARY),
        "daily_stats": series,
    }


def test_zenovay_24h_is_hourly_and_matches_native_and_reference(env: Env) -> None:
    domain = "ktm.example"
    site = env.ids[domain]
    body = get(env, f"/api/external/v1/analytics/{site}", range="24h")["data"]
    end = ref.NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    events = ref.in_range(env.events, domain, end - timedelta(hours=24), end)
    wanted = list(ZV_SUMMARY)
    assert body["summary"] == renamed(ref.aggregate(events, [], wanted), ZV_SUMMARY)
    native = env.ok("timeseries", site_id=site, period="24h", metrics=",".join(wanted))
    # +05:45 cuts local hours in two: a rolling 24 h touches 25 of them.
    assert len(body["daily_stats"]) == 25
    assert body["daily_stats"] == [
        {"date": p["date"], **renamed({k: p[k] for k in wanted}, ZV_SUMMARY)}
        for p in native["results"]
    ]
    # The window ends at 16:00Z = 21:45 Kathmandu: its last local hour starts at 21:00 (15:15Z).
    assert body["daily_stats"][-1]["date"] == "2026-03-20T15:15:00.000Z"


@pytest.mark.parametrize(
    ("endpoint", "prop", "key"), [("pages", "page", "path"), ("countries", "country", "code")]
)
@pytest.mark.parametrize(("limit", "offset"), [("100", "0"), ("2", "1"), ("2", "4")])
def test_zenovay_breakdowns_page_like_native_and_reference(
    env: Env, endpoint: str, prop: str, key: str, limit: str, offset: str
) -> None:
    domain = "utc.example"
    site = env.ids[domain]
    body = get(
        env,
        f"/api/external/v1/analytics/{site}/{endpoint}",
        range="90d",
        limit=limit,
        offset=offset,
    )["data"]
    first, last = preset_days("90d", today(domain))
    events = scope(env, domain, first, last)
    expected = ref.breakdown(events, prop, [], ["visitors", "pageviews"])
    total = ref.aggregate(events, [], ["visitors"])["visitors"]
    start, size = int(offset), int(limit)
    rows = [
        {
            key: r["value"],
            "unique_visitors": r["visitors"],
            "page_views": r["pageviews"],
            **({"percentage": round(100 * r["visitors"] / total, 1)} if prop == "country" else {}),
        }
        for r in expected[start : start + size]
    ]
    assert body[endpoint] == rows
    assert body["pagination"] == {
        "limit": size,
        "offset": start,
        "total": len(expected),
        "has_more": start + size < len(expected),
    }
    native = env.ok("breakdown", site_id=site, period="90d", property=prop, limit="1000")
    assert native["results"][start : start + size] == [
        {"value": r[key], "visitors": r["unique_visitors"], "pageviews": r["page_views"]}
        for r in body[endpoint]
    ]


def test_zenovay_technology_matches_reference(env: Env) -> None:
    domain = "ny.example"
    site = env.ids[domain]
    body = get(env, f"/api/external/v1/analytics/{site}/technology", range="30d")["data"]
    first, last = preset_days("30d", today(domain))
    events = scope(env, domain, first, last)
    total = ref.aggregate(events, [], ["visitors"])["visitors"]
    totals = {}
    for name, prop in {
        "browsers": "browser",
        "operating_systems": "os",
        "devices": "device",
    }.items():
        expected = ref.breakdown(events, prop, [], ["visitors"])
        totals[name] = len(expected)
        assert body[name] == [
            {
                "name": r["value"],
                "unique_visitors": r["visitors"],
                "percentage": round(100 * r["visitors"] / total, 1),
            }
            for r in expected
        ]
    assert body["pagination"] == {
        "limit": 50,
        "offset": 0,
        "total": max(totals.values()),
        "has_more": False,
        "totals": totals,
    }


def test_zenovay_visitors_pages_through_the_daily_series(env: Env) -> None:
    domain = "ny.example"
    site = env.ids[domain]
    body = get(
        env, f"/api/external/v1/analytics/{site}/visitors", range="30d", limit="7", offset="21"
    )
    first, last = preset_days("30d", today(domain))
    rows = daily(env, domain, first, last, list(ZV_SUMMARY))
    expected = [
        {"date": d.isoformat(), **renamed(r, ZV_SUMMARY)}
        for d, r in zip(days(first, last), rows, strict=True)
    ]
    assert body["data"]["visitors"] == expected[21:28]
    assert body["data"]["pagination"] == {"limit": 7, "offset": 21, "total": 30, "has_more": True}


# --- Ovyxa --------------------------------------------------------------------------------

OV_METRICS = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]


@pytest.fixture(scope="module")
def bots(env: Env) -> int:
    """Bot hits on ny.example: two days inside FROM..TO, one outside."""
    epoch = date(1970, 1, 1)
    site = env.ids["ny.example"]
    hits = [(date(2026, 2, 10), 3), (date(2026, 3, 18), 4), (date(2026, 3, 19), 50)]
    env.live.services.events.append([], [(site, (d - epoch).days, n) for d, n in hits])
    return 7


@pytest.mark.parametrize("domain", SITE_NAMES)
def test_ovyxa_stats_match_native_and_reference(env: Env, domain: str, bots: int) -> None:
    site = env.ids[domain]
    body = get(env, "/api/v1/stats", site_id=site, date_from=FROM, date_to=TO)
    first, last = date.fromisoformat(FROM), date.fromisoformat(TO)
    expected = ref.aggregate(scope(env, domain, first, last), [], OV_METRICS)
    native = env.ok(
        "aggregate", site_id=site, date_from=FROM, date_to=TO, metrics=",".join(OV_METRICS)
    )
    assert native["metrics"] == expected
    series = [
        {"date": d.isoformat(), **row}
        for d, row in zip(
            days(first, last), daily(env, domain, first, last, OV_METRICS), strict=True
        )
    ]
    assert body == {
        "data": {"metrics": expected, "timeseries": series},
        "meta": {
            "timezone": dict(ref.SITES)[domain],
            "from_rollups": False,
            "sampled": False,
            "filtered_bot_traffic": bots if domain == "ny.example" else 0,
        },
    }
    assert body["meta"] == native["meta"]


def test_ovyxa_compare_adds_the_previous_period(env: Env) -> None:
    domain = "ktm.example"
    site = env.ids[domain]
    body = get(
        env,
        "/api/v1/stats",
        site_id=site,
        date_from="2026-03-01",
        date_to="2026-03-14",
        compare="true",
    )
    before = ref.aggregate(scope(env, domain, date(2026, 2, 15), date(2026, 2, 28)), [], OV_METRICS)
    native = env.ok(
        "aggregate",
        site_id=site,
        date_from="2026-03-01",
        date_to="2026-03-14",
        compare="true",
        metrics=",".join(OV_METRICS),
    )
    comparison = body["data"]["comparison"]
    assert comparison["metrics"] == before == native["comparison"]["metrics"]
    assert (comparison["date_from"], comparison["date_to"]) == ("2026-02-15", "2026-02-28")
    assert comparison["change"] == native["change"]
    assert [p["date"] for p in comparison["timeseries"]] == [
        d.isoformat() for d in days(date(2026, 2, 15), date(2026, 2, 28))
    ]
    assert comparison["timeseries"] == [
        {"date": d.isoformat(), **row}
        for d, row in zip(
            days(date(2026, 2, 15), date(2026, 2, 28)),
            daily(env, domain, date(2026, 2, 15), date(2026, 2, 28), OV_METRICS),
            strict=True,
        )
    ]


def test_ovyxa_timezone_override_moves_the_days(env: Env) -> None:
    domain = "utc.example"
    site = env.ids[domain]
    body = get(
        env, "/api/v1/stats", site_id=site, date_from=FROM, date_to=TO, timezone="Asia/Tokyo"
    )
    zone = ZoneInfo("Asia/Tokyo")
    start = datetime(2026, 2, 10, tzinfo=zone)
    end = datetime(2026, 3, 19, tzinfo=zone)
    expected = ref.aggregate(ref.in_range(env.events, domain, start, end), [], OV_METRICS)
    assert body["data"]["metrics"] == expected
    assert body["meta"]["timezone"] == "Asia/Tokyo"
    assert start.astimezone(UTC).hour == 15  # the range really moved off UTC midnights
