"""Plausible Stats API v2 and Infinity's /api/v1/analytics, against the same answer key."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests import stats_reference as ref
from tests.stats_env import Env, preset_days, scope

UTC_SITE = "utc.example"


def v2(env: Env, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{env.live.url}/api/v2/query", json=body, timeout=30)


def signup_goal(env: Env) -> str:
    """The UTC site's goal for Signup events (v2 refuses a goal that isn't configured, as
    Plausible): added once, whichever test asks first."""
    from app.storage.goals import add_goal, goals_of

    meta, site = env.live.services.meta, env.ids[UTC_SITE]
    if not any(g.kind == "event" and g.value == "Signup" for g in goals_of(meta, site)):
        add_goal(meta, site, "event", "Signup", "Signed up")
    return "Signed up"


def week(env: Env) -> list[ref.Event]:
    first, last = preset_days("7d", ref.NOW.date())
    return scope(env, UTC_SITE, first, last)


def test_v2_aggregate_matches_reference_when_site_named_by_domain(env: Env) -> None:
    metrics = [
        "visitors",
        "visits",
        "pageviews",
        "bounce_rate",
        "visit_duration",
        "views_per_visit",
    ]
    response = v2(env, {"site_id": UTC_SITE, "metrics": metrics, "date_range": "7d"})
    assert response.status_code == 200, response.text
    body = response.json()
    # v2's bounce_rate and visit_duration are Plausible's (whole numbers; engagement
    # events don't lengthen visits).
    v2_names = [f"v2_{m}" if m in ("bounce_rate", "visit_duration") else m for m in metrics]
    expected = ref.aggregate(week(env), [], v2_names)
    assert body["results"] == [{"metrics": [expected[m] for m in v2_names], "dimensions": []}]
    assert body["query"]["date_range"] == ["2026-03-14T00:00:00Z", "2026-03-21T00:00:00Z"]
    assert body["meta"]["sampled"] is False


def test_v2_breakdown_orders_paginates_and_counts_rows(env: Env) -> None:
    body = v2(
        env,
        {
            "site_id": env.ids[UTC_SITE],
            "metrics": ["visitors", "pageviews"],
            "date_range": "30d",
            "dimensions": ["visit:source"],
            "order_by": [["pageviews", "asc"]],
            "include": {"total_rows": True},
            "pagination": {"limit": 2, "offset": 1},
        },
    ).json()
    first, last = preset_days("30d", ref.NOW.date())
    rows = ref.breakdown(scope(env, UTC_SITE, first, last), "source", [], ["visitors", "pageviews"])
    rows.sort(key=lambda r: (r["pageviews"], r["value"] is None, r["value"] or ""))
    assert body["results"] == [
        {"metrics": [r["visitors"], r["pageviews"]], "dimensions": [r["value"] or "Direct / None"]}
        for r in rows[1:3]
    ]
    assert body["meta"]["total_rows"] == len(rows)


def test_v2_logical_filters_contains_matches_and_not(env: Env) -> None:
    filters = [
        "and",
        [
            ["is", "visit:country", ["GB", "US"]],
            ["or", [["contains", "event:page", ["blog"]], ["matches", "event:page", ["^/doc"]]]],
            ["not", ["is", "visit:device", ["Mobile"]]],  # Plausible's device names
        ],
    ]
    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["visitors", "pageviews", "visits"],
            "date_range": "30d",
            "filters": [filters],
        },
    ).json()

    def hit(e: ref.Event) -> bool:
        return (
            e.attrs["country"] in ("GB", "US")
            and ("blog" in e.path or e.path.startswith("/doc"))
            and e.attrs["device"] != "mobile"
        )

    first, last = preset_days("30d", ref.NOW.date())
    expected = ref.metrics(
        scope(env, UTC_SITE, first, last), hit, ["visitors", "pageviews", "visits"], lambda e: True
    )
    assert body["results"][0]["metrics"] == list(expected.values())
    assert expected["visitors"] > 0


def test_v2_is_matches_exactly_while_native_filters_take_wildcards(env: Env) -> None:
    first, last = preset_days("30d", ref.NOW.date())
    events = scope(env, UTC_SITE, first, last)
    page = next(e.path for e in events if e.path.startswith("/blog"))
    pattern = page[:-1] + "*"

    def visitors(filters: list[Any]) -> int:
        query = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "30d"}
        return int(v2(env, {**query, "filters": filters}).json()["results"][0]["metrics"][0])

    def expected(pred: Any) -> int:
        return int(ref.metrics(events, pred, ["visitors"], lambda e: True)["visitors"])

    assert visitors([["is", "event:page", [pattern]]]) == 0
    exact = expected(lambda e: e.path == page)
    assert exact > 0
    assert visitors([["is", "event:page", [page]]]) == exact
    assert visitors([["is_not", "event:page", [pattern]]]) == expected(lambda e: True)
    native = env.ok("aggregate", site_id=env.ids[UTC_SITE], metrics="visitors", page=pattern)
    wildcard = expected(lambda e: e.path.startswith(page[:-1]))
    assert native["metrics"]["visitors"] == wildcard > exact


def test_v2_case_sensitive_false_modifier(env: Env) -> None:
    query_30d = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "30d"}
    first, last = preset_days("30d", ref.NOW.date())
    events = scope(env, UTC_SITE, first, last)

    def visitors(*filters: list[Any]) -> int:
        query = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "30d"}
        response = v2(env, {**query, "filters": list(filters)})
        assert response.status_code == 200, response.text
        return int(response.json()["results"][0]["metrics"][0])

    def expected(pred: Any) -> int:
        return int(ref.metrics(events, pred, ["visitors"], lambda e: True)["visitors"])

    loose = {"case_sensitive": False}
    blog = expected(lambda e: "blog" in e.path)
    assert blog > 0
    assert visitors(["contains", "event:page", ["BLOG"]]) == 0  # case-sensitive by default
    assert visitors(["contains", "event:page", ["BLOG"], {"case_sensitive": True}]) == 0
    assert visitors(["contains", "event:page", ["BLOG"], loose]) == blog
    assert visitors(["contains_not", "event:page", ["BLOG"], loose]) == expected(
        lambda e: "blog" not in e.path
    )
    gb_us = expected(lambda e: e.attrs["country"] in ("GB", "US"))
    assert visitors(["is", "visit:country", ["gb", "Us"], loose]) == gb_us > 0
    assert visitors(["is", "visit:country", ["gb", "Us"]]) == 0
    assert visitors(["is_not", "event:page", ["/DOCS"], loose]) == expected(
        lambda e: e.path != "/docs"
    )
    signup = expected(lambda e: e.name == "Signup")
    name = signup_goal(env).lower()
    assert visitors(["is", "event:goal", [name], loose]) == signup > 0
    # Case-sensitive, "signed up" names no configured goal: Plausible's 400.
    response = v2(env, {**query_30d, "filters": [["is", "event:goal", [name]]]})
    assert response.json() == {
        "error": "Invalid filters. The goal `signed up` is not configured for this site."
        " Find out how to configure goals here:"
        " https://plausible.io/docs/stats-api#filtering-by-goals"
    }


def test_filters_with_several_values_on_a_custom_property(env: Env) -> None:
    """A property's key is a bound value too: each alternative binds it again."""
    first, last = preset_days("30d", ref.NOW.date())
    events = scope(env, UTC_SITE, first, last)
    paying = int(
        ref.metrics(events, lambda e: e.props.get("plan") in ("free", "pro"), ["visitors"], bool)[
            "visitors"
        ]
    )
    pro = int(
        ref.metrics(events, lambda e: e.props.get("plan") == "pro", ["visitors"], bool)["visitors"]
    )
    assert paying > pro > 0
    query = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "30d"}
    for tree in (
        ["contains", "event:props:plan", ["fre", "pr"]],
        ["matches", "event:props:plan", ["^fr", "o$"]],
        ["is", "event:props:plan", ["free", "pro"]],
    ):
        response = v2(env, {**query, "filters": [tree]})
        assert response.status_code == 200, (tree, response.text)
        assert response.json()["results"][0]["metrics"] == [paying], tree
    native = env.ok(
        "aggregate", site_id=env.ids[UTC_SITE], metrics="visitors", **{"prop:plan": "pro|fr*"}
    )
    assert native["metrics"]["visitors"] == paying
    native = env.ok(
        "aggregate", site_id=env.ids[UTC_SITE], metrics="visitors", **{"prop:plan": "pr*|x"}
    )
    assert native["metrics"]["visitors"] == pro


def test_v2_date_time_range_counts_events_between_the_instants(env: Env) -> None:
    """Both ends included to the second, offsets honoured; without an offset the site's
    zone. Only events inside count (not the whole days the range touches)."""
    metrics = ["visitors", "visits", "pageviews"]
    days = scope(env, "ny.example", date(2026, 3, 10), date(2026, 3, 14))
    views = [e for e in days if e.name == "pageview"]
    # From just after the days' first page view to just before their last one.
    start = views[0].ts.replace(microsecond=0) + timedelta(seconds=1)
    last = views[-1].ts.replace(microsecond=0) - timedelta(seconds=1)
    inside = ref.in_range(env.events, "ny.example", start, last + timedelta(seconds=1))
    expected = ref.metrics(inside, lambda e: True, metrics, lambda e: True)
    assert 0 < expected["pageviews"] <= len(views) - 2
    ny, plus2 = ZoneInfo("America/New_York"), timezone(timedelta(hours=2))
    for date_range in (
        [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in (start, last)],
        [t.astimezone(plus2).isoformat() for t in (start, last)],
        [t.astimezone(ny).replace(tzinfo=None).isoformat() for t in (start, last)],  # site-local
    ):
        body = v2(env, {"site_id": "ny.example", "metrics": metrics, "date_range": date_range})
        assert body.status_code == 200, body.text
        assert body.json()["results"][0]["metrics"] == [expected[m] for m in metrics], date_range
        assert body.json()["meta"]["from_rollups"] is False
    # Three hours that start at a page view's hour (UTC site): a series by hour, every
    # hour labelled, only those with data listed.
    first = next(
        e.ts for e in env.events if e.site == UTC_SITE and e.ts.date() == date(2026, 3, 19)
    )
    hour = first.replace(minute=0, second=0, microsecond=0)
    hours = [hour + timedelta(hours=i) for i in range(3)]
    hourly = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["pageviews"],
            "date_range": [f"{hours[0]:%Y-%m-%dT%H:%M:%S}Z", f"{hours[2]:%Y-%m-%dT%H}:59:59Z"],
            "dimensions": ["time:hour"],
            "include": {"time_labels": True},
        },
    ).json()
    labels = [f"{h:%Y-%m-%d %H:%M:%S}" for h in hours]
    assert hourly["meta"]["time_labels"] == labels
    per_hour: dict[str, int] = defaultdict(int)
    for e in env.events:
        label = f"{e.ts:%Y-%m-%d %H}:00:00"
        if e.site == UTC_SITE and e.name == "pageview" and label in labels:
            per_hour[label] += 1
    assert per_hour
    assert hourly["results"] == [
        {"metrics": [n], "dimensions": [h]} for h, n in sorted(per_hour.items())
    ]


@pytest.mark.parametrize(
    "date_range",
    [
        ["2026-03-10T11:00:00Z", "2026-03-10"],
        ["2026-03-10T11:00:00Z", "2026-03-10T10:59:59Z"],
        ["2026-03-10T11:00:00Z", "not a time"],
        ["2000-01-01", "2026-03-10"],
    ],
)
def test_v2_bad_date_time_ranges_get_400(env: Env, date_range: list[str]) -> None:
    body = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": date_range}
    response = v2(env, body)
    assert response.status_code == 400, response.text
    assert "date_range" in response.json()["error"]


@pytest.mark.parametrize("pattern", ["(", "*", "^/(?=blog)", "a{2,1}"])
def test_v2_bad_regular_expression_gets_400_naming_it(env: Env, pattern: str) -> None:
    for tree in (
        ["matches", "event:page", ["^/", pattern]],
        ["not", ["matches_not", "event:props:plan", [pattern]]],
    ):
        body = {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "7d"}
        response = v2(env, {**body, "filters": [tree]})
        assert response.status_code == 400, response.text
        assert f"invalid regular expression {pattern!r}" in response.json()["error"]


@pytest.mark.parametrize(
    "filters", [[], [["is", "visit:device", ["Desktop"]]]], ids=["unfiltered", "desktop"]
)
def test_v2_percentage_is_the_share_of_the_questions_visitors(env: Env, filters: list[Any]) -> None:
    first, last = preset_days("30d", ref.NOW.date())
    events = scope(env, UTC_SITE, first, last)
    wanted = [("device", ["desktop"])] if filters else []
    total = ref.aggregate(events, wanted, ["visitors"])["visitors"]
    rows = ref.breakdown(events, "source", wanted, ["visitors", "pageviews"])
    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["percentage", "pageviews"],
            "date_range": "30d",
            "dimensions": ["visit:source"],
            "filters": filters,
            "order_by": [["percentage", "desc"]],
            "pagination": {"limit": 3, "offset": 1},
        },
    )
    assert body.status_code == 200, body.text
    assert len(rows) > 4 and total > 0
    assert body.json()["results"] == [
        {
            "metrics": [round(r["visitors"] / total * 100, 1), r["pageviews"]],
            "dimensions": [r["value"] or "Direct / None"],
        }
        for r in rows[1:4]
    ]
    no_dimension = {"site_id": UTC_SITE, "metrics": ["percentage"], "date_range": "30d"}
    response = v2(env, no_dimension)
    assert response.status_code == 400
    assert "percentage" in response.json()["error"]


def test_v2_time_dimension_lists_buckets_with_data_and_all_time_labels(env: Env) -> None:
    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["pageviews"],
            "date_range": "30d",
            "dimensions": ["time:day"],
            "include": {"time_labels": True},
        },
    ).json()
    first, last = preset_days("30d", ref.NOW.date())
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    events = scope(env, UTC_SITE, first, last)
    counts = {d: sum(1 for e in events if e.name == "pageview" and e.ts.date() == d) for d in days}
    assert body["results"] == [
        {"metrics": [n], "dimensions": [d.isoformat()]} for d, n in counts.items() if n
    ]
    assert body["meta"]["time_labels"] == [d.isoformat() for d in days]
    assert 0 in counts.values()


@pytest.mark.parametrize(
    ("date_range", "labels"),
    [
        # Whole units to the last second: 2 days (47:59:59) are hours, 3 days days, 41 days
        # (40 days 23:59:59) still days, 42 days weeks, 53 weeks months
        (
            ["2026-03-18", "2026-03-19"],
            [f"2026-03-{d} {h:02}:00:00" for d in (18, 19) for h in range(24)],
        ),
        (["2026-03-17", "2026-03-19"], ["2026-03-17", "2026-03-18", "2026-03-19"]),
        # 2026-02-04 is a Wednesday: its week is labelled with it, the next ones by Monday
        (
            ["2026-02-08", "2026-03-20"],
            [f"2026-02-{d:02}" for d in range(8, 29)] + [f"2026-03-{d:02}" for d in range(1, 21)],
        ),
        (
            ["2026-02-04", "2026-03-17"],
            [
                "2026-02-04",
                "2026-02-09",
                "2026-02-16",
                "2026-02-23",
                "2026-03-02",
                "2026-03-09",
                "2026-03-16",
            ],
        ),
        (
            ["2025-03-10", "2026-03-20"],
            [f"2025-{m:02}-01" for m in range(3, 13)] + ["2026-01-01", "2026-02-01", "2026-03-01"],
        ),
    ],
    ids=["2 days", "3 days", "41 days", "42 days", "53 weeks"],
)
def test_v2_time_picks_its_granularity_from_the_range(
    env: Env, date_range: list[str], labels: list[str]
) -> None:
    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["pageviews"],
            "date_range": date_range,
            "dimensions": ["time"],
            "include": {"time_labels": True},
        },
    )
    assert body.status_code == 200, body.text
    assert body.json()["meta"]["time_labels"] == labels
    first, last = date.fromisoformat(date_range[0]), date.fromisoformat(date_range[1])
    events = [e for e in scope(env, UTC_SITE, first, last) if e.name == "pageview"]

    def label(e: ref.Event) -> str:  # the last label at or before the event's time
        stamp = f"{e.ts:%Y-%m-%d %H}:00:00" if " " in labels[0] else e.ts.date().isoformat()
        return max(lab for lab in labels if lab <= stamp)

    counts: dict[str, int] = defaultdict(int)
    for e in events:
        counts[label(e)] += 1
    assert body.json()["results"] == [
        {"metrics": [counts[lab]], "dimensions": [lab]} for lab in labels if counts[lab]
    ]


def test_v2_goal_conversion_rate_by_event_props(env: Env) -> None:
    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": ["visitors", "conversion_rate"],
            "date_range": "30d",
            "filters": [["is", "event:goal", [signup_goal(env)]]],
            "dimensions": ["event:props:plan"],
        },
    ).json()
    first, last = preset_days("30d", ref.NOW.date())
    rows = ref.breakdown(
        scope(env, UTC_SITE, first, last),
        "prop:plan",
        [("event", ["Signup"])],
        ["visitors", "conversion_rate"],
    )
    assert body["results"] == [
        {"metrics": [r["visitors"], r["conversion_rate"]], "dimensions": [r["value"]]} for r in rows
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"site_id": UTC_SITE, "metrics": ["visitors"]}, "date_range"),
        (
            {"site_id": UTC_SITE, "metrics": ["nope"], "date_range": "7d"},
            '#/metrics/0: Invalid metric "nope"',
        ),
        (
            {
                "site_id": UTC_SITE,
                "metrics": ["visitors"],
                "date_range": "7d",
                "dimensions": ["visit:shoe"],
            },
            '#/dimensions/0: Invalid dimension "visit:shoe"',
        ),
        (
            {"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "5y"},
            '#/date_range: Invalid date range "5y"',
        ),
        (
            {
                "site_id": UTC_SITE,
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [["is", "visit:country"]],
            },
            "Invalid filter",
        ),
        ({"site_id": UTC_SITE, "metrics": ["conversion_rate"], "date_range": "7d"}, "event:goal"),
        (
            {
                "site_id": UTC_SITE,
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [["matches", "event:page", ["^/"], {"case_sensitive": False}]],
            },
            '#/filters/0: Invalid filter ["matches", "event:page", ["^/"],'
            ' %{"case_sensitive" => false}]',
        ),
        (
            {
                "site_id": UTC_SITE,
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [["is", "event:page", ["/"], {"case_sensitive": "no"}]],
            },
            '#/filters/0: Invalid filter ["is", "event:page", ["/"], %{"case_sensitive" => "no"}]',
        ),
        (
            {
                "site_id": UTC_SITE,
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [["contains", "event:page", ["/"], {"exact": True}]],
            },
            '#/filters/0: Invalid filter ["contains", "event:page", ["/"], %{"exact" => true}]',
        ),
        ({"site_id": UTC_SITE, "metrics": ["visitors"], "date_range": "7d", "bogus": 1}, "bogus"),
    ],
)
def test_v2_invalid_queries_get_400_with_plausible_error(
    env: Env, body: dict[str, Any], message: str
) -> None:
    response = v2(env, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert set(response.json()) == {"error"}


def test_infinity_analytics_counts_page_views_visitors_and_custom_events(env: Env) -> None:
    response = httpx.get(
        f"{env.live.url}/api/v1/analytics",
        params={
            "site_id": env.ids[UTC_SITE],
            "start_date": "2026-03-01",
            "end_date": "2026-03-15",
            "metrics": "page_views,unique_visitors,events",
        },
    )
    assert response.status_code == 200, response.text
    events = scope(env, UTC_SITE, date(2026, 3, 1), date(2026, 3, 15))
    assert response.json() == {
        "data": {
            "page_views": sum(1 for e in events if e.name == "pageview"),
            "unique_visitors": len({e.visitor for e in events if e.name != "engagement"}),
            "events": sum(1 for e in events if e.name not in ("pageview", "engagement")),
        },
        "period": {"start": "2026-03-01", "end": "2026-03-15"},
    }


def test_openapi_document_lists_the_stats_routes(env: Env) -> None:
    doc = httpx.get(f"{env.live.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/api/v1/stats/aggregate",
        "/api/v1/stats/timeseries",
        "/api/v1/stats/breakdown",
        "/api/v1/stats/realtime",
        "/api/v2/query",
        "/api/v1/analytics",
        "/collect",
        "/api/event",
    ):
        assert path in doc["paths"], path
    params = {p["name"] for p in doc["paths"]["/api/v1/stats/breakdown"]["get"]["parameters"]}
    assert {"site_id", "period", "from", "to", "property", "sort", "limit", "page_number"} <= params


def test_goals_drive_conversion_rate_natively_and_in_v2(env: Env) -> None:
    from app.storage.goals import add_goal

    meta = env.live.services.meta
    site = env.ids[UTC_SITE]
    add_goal(meta, site, "page", "/pricing", "Visit /pricing")
    signup_goal(env)  # event Signup, "Signed up"
    first, last = preset_days("30d", ref.NOW.date())
    events = scope(env, UTC_SITE, first, last)

    def pricing(e: ref.Event) -> bool:
        return e.name == "pageview" and e.path == "/pricing"

    def either(e: ref.Event) -> bool:
        return pricing(e) or e.name == "Signup"

    wanted = ["visitors", "conversion_rate"]
    one = ref.metrics(events, pricing, wanted, lambda e: True)
    both = ref.metrics(events, either, wanted, lambda e: True)
    assert 0 < one["conversion_rate"] < both["conversion_rate"] < 100

    native = env.ok(
        "aggregate", site_id=site, metrics="visitors,conversion_rate", goal="Visit /pricing"
    )
    assert native["metrics"] == one
    native_both = env.ok(
        "aggregate",
        site_id=site,
        metrics="visitors,conversion_rate",
        goal="Visit /pricing|Signed up",
    )
    assert native_both["metrics"] == both
    unknown = env.get("aggregate", site_id=site, metrics="conversion_rate", goal="Nope")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "invalid_request")

    body = v2(
        env,
        {
            "site_id": UTC_SITE,
            "metrics": wanted,
            "date_range": "30d",
            "filters": [["is", "event:goal", ["Visit /pricing", "Signed up"]]],
        },
    ).json()
    assert body["results"][0]["metrics"] == [both["visitors"], both["conversion_rate"]]
