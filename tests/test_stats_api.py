"""The native stats API against an independent answer key (tests/stats_reference.py), at a
fixed "now", in UTC, America/New_York (DST on 2026-03-08) and Asia/Kathmandu (+05:45)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import stats_reference as ref
from tests.stats_env import ALL_METRICS, Env, preset_days, scope

PRESETS = ["today", "yesterday", "7d", "30d", "90d", "12m", "wtd", "mtd", "ytd", "month"]
SITE_NAMES = [d for d, _ in ref.SITES]


@pytest.mark.parametrize("domain", SITE_NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_aggregate_matches_reference_for_every_preset(env: Env, domain: str, preset: str) -> None:
    zone = ZoneInfo(dict(ref.SITES)[domain])
    first, last = preset_days(preset, ref.NOW.astimezone(zone).date())
    body = env.ok(
        "aggregate", site_id=env.ids[domain], period=preset, metrics=",".join(ALL_METRICS)
    )
    assert body["period"] == {"from": first.isoformat(), "to": last.isoformat(), "preset": preset}
    assert body["metrics"] == ref.aggregate(scope(env, domain, first, last), [], ALL_METRICS)
    assert body["meta"] == {
        "timezone": zone.key,
        "from_rollups": False,
        "sampled": False,
        "filtered_bot_traffic": 0,
    }


FILTERS = [
    [("page", ["/blog/*"])],
    [("page", ["/docs", "/pricing"])],
    [("source", ["Google", "newsletter"])],
    [("country", ["GB"]), ("device", ["desktop"])],
    [("channel", ["Organic Social"])],
    [("prop:plan", ["pro"])],
    [("event", ["Signup"])],
    [("browser", ["Safari"]), ("entry_page", ["/blog/*"])],
    [("exit_page", ["/pricing"])],
    [("utm_campaign", ["launch"])],
    [("event", ["Signup"]), ("exit_page", ["/pricing", "/docs"])],
]


@pytest.mark.parametrize("domain", SITE_NAMES)
@pytest.mark.parametrize(
    "filters", FILTERS, ids=lambda f: "&".join(f"{d}={'|'.join(v)}" for d, v in f)
)
def test_filtered_aggregate_matches_reference(env: Env, domain: str, filters: ref.Filters) -> None:
    zone = ZoneInfo(dict(ref.SITES)[domain])
    first, last = preset_days("30d", ref.NOW.astimezone(zone).date())
    wanted = [*ALL_METRICS, *(["conversion_rate"] if filters[0][0] == "event" else [])]
    params = {d: "|".join(v) for d, v in filters}
    body = env.ok("aggregate", site_id=env.ids[domain], metrics=",".join(wanted), **params)
    assert body["metrics"] == ref.aggregate(scope(env, domain, first, last), filters, wanted)


PROPERTIES = [
    "page",
    "entry_page",
    "exit_page",
    "hostname",
    "source",
    "referrer",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "event",
    "prop:plan",
]


@pytest.mark.parametrize("prop", PROPERTIES)
def test_breakdown_matches_reference_for_every_property(env: Env, prop: str) -> None:
    domain = "ny.example"
    zone = ZoneInfo("America/New_York")
    first, last = preset_days("90d", ref.NOW.astimezone(zone).date())
    wanted = ["visitors", "pageviews", "visits", "bounce_rate", "visit_duration", "events"]
    body = env.ok(
        "breakdown",
        site_id=env.ids[domain],
        period="90d",
        property=prop,
        metrics=",".join(wanted),
        limit="1000",
    )
    expected = ref.breakdown(scope(env, domain, first, last), prop, [], wanted)
    assert body["results"] == expected
    assert body["pagination"] == {
        "page_number": 1,
        "limit": 1000,
        "total_rows": len(expected),
        "total_pages": 1,
    }


@pytest.mark.parametrize("prop", ["exit_page", "entry_page", "source", "page", "prop:plan"])
def test_conversion_rate_breakdown_matches_reference(env: Env, prop: str) -> None:
    domain = "ktm.example"
    first, last = preset_days("30d", ref.NOW.astimezone(ZoneInfo("Asia/Kathmandu")).date())
    wanted = ["visitors", "conversion_rate", "events"]
    body = env.ok(
        "breakdown",
        site_id=env.ids[domain],
        property=prop,
        metrics=",".join(wanted),
        event="Signup",
        limit="1000",
    )
    filters = [("event", ["Signup"])]
    expected = ref.breakdown(scope(env, domain, first, last), prop, filters, wanted)
    assert expected
    assert body["results"] == expected


def test_breakdown_paginates_and_sorts_when_asked(env: Env) -> None:
    domain = "utc.example"
    first, last = preset_days("90d", ref.NOW.date())
    expected = ref.breakdown(scope(env, domain, first, last), "page", [], ["visitors", "pageviews"])
    expected.sort(key=lambda r: (r["pageviews"], r["value"]))
    body = env.ok(
        "breakdown",
        site_id=env.ids[domain],
        period="90d",
        property="page",
        sort="pageviews.asc",
        limit="2",
        page_number="2",
    )
    assert body["results"] == expected[2:4]
    assert body["pagination"] == {
        "page_number": 2,
        "limit": 2,
        "total_rows": len(expected),
        "total_pages": -(-len(expected) // 2),
    }


def test_breakdown_counts_outbound_clicks_per_exit_link(env: Env) -> None:
    domain = "ktm.example"
    first, last = preset_days("90d", ref.NOW.astimezone(ZoneInfo("Asia/Kathmandu")).date())
    events = [e for e in scope(env, domain, first, last) if e.name == "Outbound Link: Click"]
    counts: dict[str, int] = {}
    for e in events:
        counts[e.props["url"]] = counts.get(e.props["url"], 0) + 1
    body = env.ok(
        "breakdown",
        site_id=env.ids[domain],
        period="90d",
        property="exit_link",
        metrics="clicks",
        sort="clicks.desc",
    )
    assert body["results"] == [
        {"value": url, "clicks": n}
        for url, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def utc_label(local: datetime, zone: ZoneInfo) -> str:
    return local.replace(tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def day_starts(first: date, last: date, interval: str) -> list[datetime]:
    day = first
    if interval == "week":
        day -= timedelta(days=day.weekday())
    if interval == "month":
        day = day.replace(day=1)
    out = []
    while day <= last:
        out.append(datetime(day.year, day.month, day.day))
        if interval == "day":
            day += timedelta(days=1)
        elif interval == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


@pytest.mark.parametrize("domain", SITE_NAMES)
@pytest.mark.parametrize(
    ("preset", "interval"), [("30d", "day"), ("90d", "week"), ("ytd", "month")]
)
def test_timeseries_matches_reference_with_zero_filled_buckets(
    env: Env, domain: str, preset: str, interval: str
) -> None:
    zone = ZoneInfo(dict(ref.SITES)[domain])
    first, last = preset_days(preset, ref.NOW.astimezone(zone).date())
    wanted = ["visitors", "pageviews", "visits", "bounce_rate"]
    body = env.ok(
        "timeseries",
        site_id=env.ids[domain],
        period=preset,
        interval=interval,
        metrics=",".join(wanted),
    )
    starts = day_starts(first, last, interval)
    rows = ref.buckets(scope(env, domain, first, last), zone, starts, interval, [], wanted)
    expected = [{"date": utc_label(s, zone), **r} for s, r in zip(starts, rows, strict=True)]
    assert body["results"] == expected
    assert any(r["visitors"] == 0 for r in expected) or interval != "day"


@pytest.mark.parametrize("domain", SITE_NAMES)
def test_hourly_timeseries_for_today_has_24_utc_labelled_buckets(env: Env, domain: str) -> None:
    zone = ZoneInfo(dict(ref.SITES)[domain])
    today = ref.NOW.astimezone(zone).date()
    body = env.ok(
        "timeseries", site_id=env.ids[domain], period="today", metrics="visitors,pageviews"
    )
    assert body["interval"] == "hour"
    starts = [datetime(today.year, today.month, today.day, h) for h in range(24)]
    rows = ref.buckets(
        scope(env, domain, today, today), zone, starts, "hour", [], ["visitors", "pageviews"]
    )
    assert body["results"] == [
        {"date": utc_label(s, zone), **r} for s, r in zip(starts, rows, strict=True)
    ]
    if domain == "ktm.example":
        assert body["results"][0]["date"] == f"{today - timedelta(days=1)}T18:15:00.000Z"


def test_dst_day_has_23_hourly_buckets_in_new_york(env: Env) -> None:
    body = env.ok(
        "timeseries",
        site_id=env.ids["ny.example"],
        period="custom",
        **{"from": "2026-03-08", "to": "2026-03-08"},
        metrics="pageviews",
    )
    labels = [r["date"] for r in body["results"]]
    assert len(labels) == 23
    assert labels[:3] == [
        "2026-03-08T05:00:00.000Z",
        "2026-03-08T06:00:00.000Z",
        "2026-03-08T07:00:00.000Z",
    ]
    first, last = date(2026, 3, 8), date(2026, 3, 8)
    total = ref.aggregate(scope(env, "ny.example", first, last), [], ["pageviews"])["pageviews"]
    assert sum(r["pageviews"] for r in body["results"]) == total


def test_compare_previous_period_adds_comparison_and_change(env: Env) -> None:
    domain = "utc.example"
    first, last = preset_days("7d", ref.NOW.date())
    before = (first - timedelta(days=7), last - timedelta(days=7))
    wanted = ["visitors", "pageviews", "bounce_rate"]
    body = env.ok(
        "aggregate",
        site_id=env.ids[domain],
        period="7d",
        metrics=",".join(wanted),
        compare="previous_period",
    )
    now = ref.aggregate(scope(env, domain, first, last), [], wanted)
    then = ref.aggregate(scope(env, domain, *before), [], wanted)
    assert body["metrics"] == now
    assert body["comparison"] == {
        "period": {"from": before[0].isoformat(), "to": before[1].isoformat(), "preset": "7d"},
        "metrics": then,
    }

    def pct(a: float, b: float) -> float | int:
        return (0 if a == 0 else 100) if b == 0 else round((a - b) / b * 100, 1)

    assert body["change"] == {
        "visitors": pct(now["visitors"], then["visitors"]),
        "pageviews": pct(now["pageviews"], then["pageviews"]),
        "bounce_rate": round(now["bounce_rate"] - then["bounce_rate"], 1),
    }


def test_empty_range_answers_zeros(env: Env) -> None:
    body = env.ok(
        "aggregate",
        site_id=env.ids["utc.example"],
        period="custom",
        **{"from": "2026-03-25", "to": "2026-03-31"},
        metrics=",".join(ALL_METRICS),
    )
    assert body["metrics"] == {
        **dict.fromkeys(ALL_METRICS, 0),
        "bounce_rate": 0.0,
        "views_per_visit": 0.0,
        "revenue": 0.0,
        "scroll_depth": None,
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("aggregate", {"metrics": "nope"}, 400, "unknown metric 'nope'"),
        ("aggregate", {"period": "week"}, 400, "unknown period 'week'"),
        ("aggregate", {"period": "custom", "from": "2026-01-01"}, 400, "requires both from and to"),
        (
            "aggregate",
            {"period": "7d", "from": "2026-01-01", "to": "2026-01-02"},
            400,
            "only valid when period=custom",
        ),
        (
            "aggregate",
            {"period": "custom", "from": "2026-13-01", "to": "2026-12-02"},
            400,
            "YYYY-MM-DD",
        ),
        ("aggregate", {"metrics": "conversion_rate"}, 400, "needs an event filter"),
        ("aggregate", {"timezone": "Mars/Base"}, 400, "unknown timezone"),
        ("aggregate", {"compare": "yesterday"}, 400, "compare must be"),
        ("timeseries", {"interval": "second"}, 400, "interval must be one of"),
        ("timeseries", {"interval": "minute"}, 400, "for periods of one day or less"),
        ("timeseries", {"period": "24h", "interval": "day"}, 400, "only supports interval=hour"),
        ("breakdown", {}, 400, "property is required"),
        ("breakdown", {"property": "shoe_size"}, 400, "unknown property"),
        ("breakdown", {"property": "city"}, 400, "requires a country filter"),
        (
            "breakdown",
            {"property": "page", "limit": "5000"},
            400,
            "limit must be between 1 and 1000",
        ),
        ("breakdown", {"property": "page", "sort": "bounce_rate.desc"}, 400, "sort must be"),
        (
            "breakdown",
            {"property": "page", "metrics": "entries"},
            400,
            "only available with property=entry_page",
        ),
        (
            "aggregate",
            {"period": "custom", "from": "2025-01-01", "to": "2025-01-31", "page": "/"},
            422,
            "raw event window",
        ),
        (
            "timeseries",
            {"period": "custom", "from": "2025-01-01", "to": "2025-01-02", "interval": "hour"},
            422,
            "hourly data",
        ),
    ],
)
def test_invalid_parameters_get_the_error_envelope(
    env: Env, path: str, params: dict[str, str], status: int, message: str
) -> None:
    response = env.get(path, site_id=env.ids["utc.example"], **params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("unsupported_query" if status == 422 else "invalid_request")
    assert message in error["message"]


def test_unknown_site_is_404(env: Env) -> None:
    response = env.get("aggregate", site_id="doesnotexist")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_ovyxa_aliases_date_from_and_date_to_mean_custom(env: Env) -> None:
    body = env.ok(
        "aggregate", site_id=env.ids["utc.example"], date_from="2026-03-01", date_to="2026-03-10"
    )
    assert body["period"] == {"from": "2026-03-01", "to": "2026-03-10", "preset": "custom"}
    expected = ref.aggregate(
        scope(env, "utc.example", date(2026, 3, 1), date(2026, 3, 10)), [], ["visitors"]
    )
    assert body["metrics"] == expected


def test_realtime_counts_visitors_in_the_window_before_now(env: Env) -> None:
    body = env.ok("realtime", site_id=env.ids["utc.example"], minutes="60")
    since = ref.NOW - timedelta(minutes=60)
    expected = len({e.visitor for e in env.events if e.site == "utc.example" and since <= e.ts})
    assert body == {"current_visitors": expected, "window_minutes": 60}


def test_rolling_24h_in_kathmandu_keeps_the_last_partial_local_hour(env: Env) -> None:
    body = env.ok("timeseries", site_id=env.ids["ktm.example"], period="24h", metrics="pageviews")
    labels = [r["date"] for r in body["results"]]
    # NOW is 15:30Z; the window is [16:00Z - 24h, 16:00Z): local hours 20:00 (at 14:15Z the
    # day before) to 21:00 (15:15Z), 25 labels because +05:45 cuts local hours in two.
    assert labels[0] == "2026-03-19T15:15:00.000Z"
    assert labels[-1] == "2026-03-20T15:15:00.000Z"
    assert len(labels) == 25
    start, end = (
        ref.NOW.replace(minute=0) + timedelta(hours=1) - timedelta(hours=24),
        ref.NOW.replace(minute=0) + timedelta(hours=1),
    )
    expected = sum(
        1
        for e in env.events
        if e.site == "ktm.example" and e.name == "pageview" and start <= e.ts < end
    )
    assert sum(r["pageviews"] for r in body["results"]) == expected


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31"])
def test_dates_outside_the_supported_years_are_400_not_500(env: Env, day: str) -> None:
    response = env.get(
        "aggregate", site_id=env.ids["utc.example"], date_from=day, date_to="2026-01-01"
    )
    assert response.status_code == 400
    assert "between 1900 and 9000" in response.json()["error"]["message"]
