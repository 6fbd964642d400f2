"""Plausible Stats API v2 as Plausible answers it (issue #20): cases translated from
Plausible's own tests (plausible/analytics, test/plausible_web/controllers/api/
external_stats_controller/query_*_test.exs and test/plausible/stats/query/
query_parse_and_build_test.exs), each citing the test it comes from. Events go through the
real ingest pipeline into a live server's DuckDB; questions go over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from tests.conftest import (
    CHROME_UA,
    IPHONE_UA,
    LiveServer,
    free_port,
    start_live_server,
    stop_live_server,
)

NOW = datetime(2021, 1, 1, 23, 0, tzinfo=UTC)
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"
)
IPAD_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
_sites = itertools.count(1)


@dataclass
class Ev:
    """One event, as Plausible's tests build them (build(:pageview, ...))."""

    ts: str = "2021-01-01 00:00:00"
    name: str = "pageview"
    user: int | None = None  # the same user (and UA) within 30 minutes is one visit
    path: str = "/"
    ua: str = CHROME_UA
    referrer: str | None = None
    query: str = ""  # ?utm_source=... on the page's URL
    props: dict[str, str] = field(default_factory=dict)
    hostname: str = "example.com"
    engagement_ms: int | None = None  # an engagement event's time on the page
    revenue: tuple[str, str] | None = None  # (amount, currency)


class Site:
    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.domain = f"site{next(_sites)}.example"
        self.site = live.services.meta.add_site(self.domain, timezone="UTC")
        self._anonymous = itertools.count(1000)

    def add(self, *events: Ev) -> Site:
        svc = self.live.services
        rows = []
        for e in sorted(events, key=lambda e: e.ts):
            user = e.user if e.user is not None else next(self._anonymous)
            ts = datetime.fromisoformat(e.ts).replace(tzinfo=UTC)
            hit = Hit(
                name=e.name,
                url=f"https://{e.hostname}{e.path}{e.query}",
                site_id=self.site.id,
                referrer=e.referrer,
                props=tuple(e.props.items()),
                engagement_ms=e.engagement_ms,
                revenue=None if e.revenue is None else (Decimal(e.revenue[0]), e.revenue[1]),
            )
            client = Client(f"10.1.{user // 250}.{user % 250 + 1}", e.ua)
            row = svc.ingest.build(hit, self.site, client, int(ts.timestamp() * 1e6))
            assert not isinstance(row, Drop), (e, row)
            rows.append(row)
        svc.events.append(rows)
        return self

    def query(self, **body: Any) -> httpx.Response:
        body = {"site_id": self.domain, "date_range": "all", **body}
        return httpx.post(f"{self.live.url}/api/v2/query", json=body, timeout=30)

    def results(self, **body: Any) -> list[dict[str, Any]]:
        response = self.query(**body)
        assert response.status_code == 200, response.text
        return response.json()["results"]  # type: ignore[no-any-return]

    def error(self, **body: Any) -> str:
        response = self.query(**body)
        assert response.status_code == 400, response.text
        assert set(response.json()) == {"error"}
        return response.json()["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("parity") / "data"
    settings = Settings(
        data_dir=str(data), port=free_port(), open_stats_on_loopback=True, run_jobs=False
    )
    server = start_live_server(settings)
    server.services.clock = lambda: NOW
    try:
        yield server
    finally:
        stop_live_server(server)


def row(dimensions: list[Any], metrics: list[Any]) -> dict[str, Any]:
    return {"dimensions": dimensions, "metrics": metrics}


# --- 1. labels -------------------------------------------------------------------------


def test_time_and_source_dimensions_keep_their_order_and_label_direct_visits(
    live: LiveServer,
) -> None:
    """query_test.exs "multiple breakdown timeseries with sources": dimensions answer in
    the asked order, visits without a source are "Direct / None", rows by time, then by
    the first metric."""
    google = "https://www.google.com/"
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:00", referrer=google),
        Ev(ts="2021-01-02 00:00:00"),
        Ev(ts="2021-01-02 00:00:00", referrer=google),
        Ev(ts="2021-01-02 00:00:00", referrer=google),
        Ev(ts="2021-01-03 00:00:00"),
        Ev(ts="2021-01-03 00:00:00"),
        Ev(ts="2021-01-03 00:00:00", referrer="https://twitter.com/"),
    )
    assert site.results(
        metrics=["visitors"],
        date_range=["2021-01-01", "2021-01-03"],
        dimensions=["time", "visit:source"],
    ) == [
        row(["2021-01-01", "Google"], [1]),
        row(["2021-01-02", "Google"], [2]),
        row(["2021-01-02", "Direct / None"], [1]),
        row(["2021-01-03", "Direct / None"], [2]),
        row(["2021-01-03", "Twitter"], [1]),
    ]


def test_custom_property_filter_takes_none_for_events_without_it(live: LiveServer) -> None:
    """query_test.exs "IN filter for event:props:* including (none) value"."""
    site = Site(live).add(
        Ev(ua=CHROME_UA, props={"browser": "Chrome"}),
        Ev(ua=CHROME_UA, props={"browser": "Chrome"}),
        Ev(ua=SAFARI_UA),
        Ev(ua=FIREFOX_UA, props={"browser": "Firefox"}),
    )
    assert site.results(
        metrics=["visitors"],
        dimensions=["visit:browser"],
        filters=[["is", "event:props:browser", ["Chrome", "(none)"]]],
    ) == [row(["Chrome"], [2]), row(["Safari"], [1])]
    # The dimension names the missing value the same way.
    assert site.results(
        metrics=["visitors"],
        dimensions=["event:props:browser"],
        filters=[["is_not", "visit:browser", ["Firefox"]]],
    ) == [row(["Chrome"], [2]), row(["(none)"], [1])]
    # is_not "(none)": the events that have the property.
    assert site.results(
        metrics=["visitors"], filters=[["is_not", "event:props:browser", ["(none)"]]]
    ) == [row([], [3])]


def test_device_and_os_answer_and_filter_with_plausibles_names(live: LiveServer) -> None:
    """breakdown/query tests' "returns screen sizes with :is_not filter on custom pageview
    props": devices are "Mobile" / "Tablet" / "Desktop", an is_not on a custom property
    keeps the events without it (where_builder.ex: filter_custom_prop :is_not)."""
    site = Site(live).add(
        Ev(user=123, ua=CHROME_UA, props={"author": "John Doe"}),
        Ev(user=123, ua=CHROME_UA, props={"author": "John Doe"}),
        Ev(ua=IPHONE_UA, props={"author": "other"}),
        Ev(ua=IPAD_UA),
    )
    assert site.results(
        metrics=["visitors", "percentage"],
        dimensions=["visit:device"],
        filters=[["is_not", "event:props:author", ["John Doe"]]],
        order_by=[["visit:device", "asc"]],
    ) == [row(["Mobile"], [1, 50.0]), row(["Tablet"], [1, 50.0])]
    assert site.results(metrics=["visitors"], dimensions=["visit:os"]) == [
        row(["iOS"], [2]),
        row(["Mac"], [1]),
    ]
    assert site.results(metrics=["visitors"], filters=[["is", "visit:os", ["Mac"]]]) == [
        row([], [1])
    ]
    assert site.results(metrics=["visitors"], filters=[["is", "visit:os", ["macOS"]]]) == [
        row([], [0])
    ]
    loose = {"case_sensitive": False}
    for values, expected in ((["Desktop"], 1), (["desktop"], 0), (["Mobile", "Tablet"], 2)):
        filters = [["is", "visit:device", values]]
        assert site.results(metrics=["visitors"], filters=filters) == [row([], [expected])]
    assert site.results(
        metrics=["visitors"], filters=[["is", "visit:device", ["DESKTOP"], loose]]
    ) == [row([], [1])]


def test_missing_utm_values_are_not_set_in_answers_and_filters(live: LiveServer) -> None:
    """expression.ex: field_or_blank_value(..., "(not set)") for UTM fields;
    where_builder.ex: db_field_val(_, "(not set)") is the empty value."""
    site = Site(live).add(
        Ev(query="?utm_source=news"),
        Ev(query="?utm_source=news"),
        Ev(),
    )
    assert site.results(metrics=["visitors"], dimensions=["visit:utm_source"]) == [
        row(["news"], [2]),
        row(["(not set)"], [1]),
    ]
    for op, expected in (("is", 1), ("is_not", 2)):
        filters = [[op, "visit:utm_source", ["(not set)"]]]
        assert site.results(metrics=["visitors"], filters=filters) == [row([], [expected])]
    # A utm_source names the visit's source; the visit without one is "Direct / None".
    filters = [["is", "visit:source", ["Direct / None"]]]
    assert site.results(metrics=["visitors"], filters=filters) == [row([], [1])]


# --- 4. negated custom property filters -------------------------------------------------


def test_negated_contains_and_matches_on_a_property_need_the_property(
    live: LiveServer,
) -> None:
    """where_builder.ex filter_custom_prop: contains_not / matches_not hold only for events
    that have the property (has_key(...) and not ...); is_not keeps events without it."""
    site = Site(live).add(
        Ev(props={"plan": "free"}),
        Ev(props={"plan": "business"}),
        Ev(),
    )
    for tree, expected in (
        (["contains_not", "event:props:plan", ["fre"]], 1),
        (["matches_not", "event:props:plan", ["^fr"]], 1),
        (["is_not", "event:props:plan", ["free"]], 2),
        (["contains", "event:props:plan", ["e"]], 2),
    ):
        assert site.results(metrics=["visitors"], filters=[tree]) == [row([], [expected])], tree


# --- 5. order -------------------------------------------------------------------------


def test_a_time_series_keeps_the_asked_order_by(live: LiveServer) -> None:
    """query-api-schema.json order_by_entry: "Metric or dimension to order by"; a series
    ordered by a metric answers in that order, not re-sorted by time."""
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:00"),
        Ev(ts="2021-01-02 00:00:00"),
        Ev(ts="2021-01-02 01:00:00"),
        Ev(ts="2021-01-02 02:00:00"),
        Ev(ts="2021-01-03 00:00:00"),
        Ev(ts="2021-01-03 01:00:00"),
    )
    body = {"metrics": ["visitors"], "date_range": ["2021-01-01", "2021-01-04"]}
    assert site.results(**body, dimensions=["time:day"], order_by=[["visitors", "desc"]]) == [
        row(["2021-01-02"], [3]),
        row(["2021-01-03"], [2]),
        row(["2021-01-01"], [1]),
    ]
    assert site.results(**body, dimensions=["time:day"], order_by=[["time:day", "desc"]]) == [
        row(["2021-01-03"], [2]),
        row(["2021-01-02"], [3]),
        row(["2021-01-01"], [1]),
    ]


# --- 8 + 9. validation, in Plausible's words ---------------------------------------------

# (query_parse_and_build_test.exs test name, body, Plausible's exact error)
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "same metric queried multiple times",
        {"metrics": ["events", "visitors", "visitors"]},
        "#/metrics: Expected items to be unique but they were not.",
    ),
    (
        "no metrics passed",
        {"metrics": []},
        "#/metrics: Expected a minimum of 1 items but got 0.",
    ),
    (
        "revenue metrics are not available on CE (the metric list form)",
        {"metrics": ["visitors", "baa"]},
        '#/metrics/1: Invalid metric "baa"',
    ),
    (
        "is filter with invalid clause",
        {"filters": [["is", "event:name", "foo"]]},
        '#/filters/0: Invalid filter ["is", "event:name", "foo"]',
    ),
    (
        "matches_wildcard is not a valid filter operation in public API",
        {"filters": [["matches_wildcard", "event:name", ["foo"]]]},
        '#/filters/0: Invalid filter ["matches_wildcard", "event:name", ["foo"]]',
    ),
    ("errors on too short filter []", {"filters": [[]]}, "#/filters/0: Invalid filter []"),
    (
        'errors on too short filter ["and", []]',
        {"filters": [["and", []]]},
        '#/filters/0: Invalid filter ["and", []]',
    ),
    (
        "errors on too long filter",
        {"filters": [["not", ["is", "event:props:foobar", ["value"]], 1]]},
        '#/filters/0: Invalid filter ["not", ["is", "event:props:foobar", ["value"]], 1]',
    ),
    (
        "invalid event filter",
        {"filters": [["is", "event:device", ["foo"]]]},
        '#/filters/0: Invalid filter ["is", "event:device", ["foo"]]',
    ),
    (
        "invalid filter",
        {"filters": "foobar"},
        "#/filters: Type mismatch. Expected Array but got String.",
    ),
    (
        "numeric filter is invalid",
        {"filters": [["is", "visit:os_version", [123]]]},
        'Invalid filter \'["is", "visit:os_version", [123]]\'.',
    ),
    (
        "invalid visit:country filter",
        {"filters": [["is", "visit:country", ["USA"]]]},
        "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
    ),
    (
        "event:hostname filter not at top level is invalid",
        {"filters": [["not", ["is", "event:hostname", ["a.plausible.io"]]]]},
        "Invalid filters. Dimension `event:hostname` can only be filtered at the top level.",
    ),
    (
        "case_sensitive modifier is not valid for matches",
        {"filters": [["matches", "event:hostname", ["a.plausible.io"], {"case_sensitive": False}]]},
        '#/filters/0: Invalid filter ["matches", "event:hostname", ["a.plausible.io"],'
        ' %{"case_sensitive" => false}]',
    ),
    (
        "setting invalid imports value",
        {"include": "foobar"},
        "#/include: Type mismatch. Expected Object but got String.",
    ),
    (
        "setting include.time_labels without time dimension",
        {"include": {"time_labels": True}},
        "Invalid include.time_labels: requires a time dimension.",
    ),
    (
        "out of range limit value",
        {"pagination": {"limit": 100_000}},
        "#/pagination/limit: Expected the value to be <= 10000",
    ),
    (
        "out of range offset value",
        {"pagination": {"offset": -5}},
        "#/pagination/offset: Expected the value to be >= 0",
    ),
    (
        "query_validations_test.exs: validates that dimensions are valid",
        {"dimensions": ["badproperty"]},
        '#/dimensions/0: Invalid dimension "badproperty"',
    ),
    (
        "query_validations_test.exs: validates that correct date range is used",
        {"date_range": "bad_period", "dimensions": ["event:name"]},
        '#/date_range: Invalid date range "bad_period"',
    ),
    (
        "query_validations_test.exs: session metrics cannot be used with event:name dimension",
        {"metrics": ["visitors", "bounce_rate"], "dimensions": ["event:name"]},
        "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s)"
        " `event:name`",
    ),
    (
        "query_parser_test.exs: include.comparisons mode=custom without date_range is invalid"
        " (comparisons are answered as Plausible's internal query API answers them)",
        {"include": {"comparisons": {"mode": "custom"}}},
        "#/include/comparisons: Expected exactly one of the schemata to match, but none of"
        " them did.",
    ),
    (
        "public schema additionalProperties: false",
        {"bogus": 1},
        "#/bogus: Schema does not allow additional properties.",
    ),
    (
        "event:goal filter validation: invalid event filter",
        {"filters": [["is", "event:goal", ["Signup"]]]},
        "Invalid filters. The goal `Signup` is not configured for this site. Find out how to"
        " configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals",
    ),
    (
        "event:goal filter validation: unsupported filter",
        {"filters": [["is_not", "event:goal", ["Signup"]]]},
        '#/filters/0: Invalid filter ["is_not", "event:goal", ["Signup"]]',
    ),
    (
        "event:goal filter validation: not top-level filter",
        {"filters": [["or", [["is", "event:goal", ["S"]], ["is", "event:name", ["pageview"]]]]]},
        "Invalid filters. Dimension `event:goal` can only be filtered at the top level.",
    ),
    (
        'errors on invalid date range value ("foo")',
        {"date_range": "foo"},
        '#/date_range: Invalid date range "foo"',
    ),
    (
        'errors on invalid date range value (["21415-00", "eee"])',
        {"date_range": ["21415-00", "eee"]},
        '#/date_range: Invalid date range ["21415-00", "eee"]',
    ),
    (
        "999999999mo is invalid date range",
        {"date_range": "999999999mo"},
        'Invalid date_range "999999999mo"',
    ),
    (
        "custom date range is invalid when date and timestamp are combined",
        {"date_range": ["2021-02-03T00:00:00Z", "2021-02-04"]},
        '#/date_range: Invalid date range ["2021-02-03T00:00:00Z", "2021-02-04"]',
    ),
    (
        "invalid custom property dimension",
        {"dimensions": ["event:props:"]},
        '#/dimensions/0: Invalid dimension "event:props:"',
    ),
    (
        "invalid dimension name passed",
        {"dimensions": ["visitors"]},
        '#/dimensions/0: Invalid dimension "visitors"',
    ),
    (
        "invalid dimension",
        {"dimensions": "foobar"},
        "#/dimensions: Type mismatch. Expected Array but got String.",
    ),
    (
        "dimensions are not unique",
        {"dimensions": ["event:name", "event:name"]},
        "#/dimensions: Expected items to be unique but they were not.",
    ),
    (
        "ordering by invalid value",
        {"order_by": [["visssss", "desc"]]},
        '#/order_by/0/0: Invalid value in order_by "visssss"',
    ),
    (
        "ordering by not queried metric",
        {"order_by": [["events", "desc"]]},
        "Invalid order_by entry '{:events, :desc}'. Entry is not a queried metric or dimension.",
    ),
    (
        "ordering by not queried dimension",
        {"order_by": [["event:name", "desc"]]},
        "Invalid order_by entry '{\"event:name\", :desc}'. Entry is not a queried metric or"
        " dimension.",
    ),
    (
        "conversion_rate metric fails validation on its own",
        {"metrics": ["conversion_rate"]},
        "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
    ),
    (
        "scroll_depth metric fails with only a non-top-level event:page filter",
        {"metrics": ["scroll_depth"], "filters": [["not", ["is", "event:page", ["/"]]]]},
        "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
    ),
    (
        "time_on_page metric fails validation on its own",
        {"metrics": ["time_on_page"]},
        "Metric `time_on_page` can only be queried with event:page filters or dimensions.",
    ),
    (
        "views_per_visit fails validation if event:page filter specified",
        {"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/"]]]},
        "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
    ),
    (
        "views_per_visit fails validation with dimensions",
        {"metrics": ["views_per_visit"], "dimensions": ["event:name"]},
        "Metric `views_per_visit` cannot be queried with `dimensions`.",
    ),
    (
        "fails if using session metric with event dimension",
        {"metrics": ["bounce_rate"], "dimensions": ["event:props:foo"]},
        "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s)"
        " `event:props:foo`",
    ),
    (
        "fails if using event metric with session-only dimension",
        {"metrics": ["events"], "dimensions": ["visit:exit_page"]},
        "Event metric(s) `events` cannot be queried along with session dimension(s)"
        " `visit:exit_page`",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"),
    [(body, message) for _, body, message in REFUSALS],
    ids=[name for name, _, _ in REFUSALS],
)
def test_plausibles_refusals_answer_400_with_its_exact_message(
    live: LiveServer, body: dict[str, Any], message: str
) -> None:
    """query_parse_and_build_test.exs (plausible/analytics, test/plausible/stats/query/):
    each case is the test named in its id, with the message that test asserts."""
    site = Site(live)
    assert site.error(**{"metrics": ["visitors"], **body}) == message


def test_queries_plausible_accepts_still_answer(live: LiveServer) -> None:
    """query_parse_and_build_test.exs "does not fail if using session metric with
    event:page dimension", "numbers are valid for visit:city", "with case insensitive
    match" (goals), "ordering by dimension": accepted, 200."""
    site = Site(live).add(Ev(path="/a"), Ev(name="Signup"))
    from app.storage.goals import add_goal

    add_goal(live.services.meta, site.site.id, "event", "Signup", "Signup")
    accepted = site.query(metrics=["bounce_rate"], dimensions=["event:page"])
    assert accepted.status_code == 200, accepted.text
    assert site.results(metrics=["visitors"], filters=[["is", "visit:city", [123, 456]]]) == [
        row([], [0])
    ]
    loose = {"case_sensitive": False}
    goal = [["is", "event:goal", ["signup"], loose]]
    assert site.results(metrics=["visitors"], filters=goal) == [row([], [1])]
    assert site.results(
        metrics=["visitors"], dimensions=["event:name"], order_by=[["event:name", "desc"]]
    ) == [row(["pageview"], [1]), row(["Signup"], [1])]


# --- 7. goals ---------------------------------------------------------------------------


def with_goals(site: Site, *goals: tuple[str, str, str]) -> Site:
    """Configured goals: (kind, event name or page path, display name)."""
    from app.storage.goals import add_goal

    for kind, value, name in goals:
        add_goal(site.live.services.meta, site.site.id, kind, value, name)  # type: ignore[arg-type]
    return site


def test_goal_dimension_lists_event_and_page_goals(live: LiveServer) -> None:
    """query_goal_dimension_test.exs "returns custom event goals and pageview goals"."""
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:01", path="/test"),
        Ev(ts="2021-01-01 00:00:03", name="Purchase"),
        Ev(ts="2021-01-01 00:00:03", name="Purchase"),
    )
    with_goals(site, ("event", "Purchase", "Purchase"), ("page", "/test", "Visit /test"))
    assert site.results(metrics=["visitors"], dimensions=["event:goal"]) == [
        row(["Purchase"], [2]),
        row(["Visit /test"], [1]),
    ]


def test_goal_dimension_matches_page_goal_wildcards(live: LiveServer) -> None:
    """query_goal_dimension_test.exs "returns pageview goals containing wildcards"."""
    site = Site(live).add(
        Ev(path="/blog", user=7),
        Ev(path="/blog/post-1", user=7),
        Ev(path="/blog/post-2", user=7),
        Ev(path="/blog/something/post"),
        Ev(path="/different/page/post"),
    )
    with_goals(site, ("page", "/**/post", "Visit /**/post"), ("page", "/blog**", "Visit /blog**"))
    assert site.results(
        metrics=["visitors", "pageviews"],
        dimensions=["event:goal"],
        order_by=[["pageviews", "desc"]],
    ) == [row(["Visit /blog**"], [2, 4]), row(["Visit /**/post"], [2, 2])]


def test_goal_dimension_leaves_out_events_that_are_no_goal(live: LiveServer) -> None:
    """query_goal_dimension_test.exs "does not return goals that are not configured for
    the site": no goals, no rows (not an event-name breakdown)."""
    site = Site(live).add(Ev(path="/register"), Ev(name="Signup"))
    assert site.results(metrics=["visitors", "pageviews"], dimensions=["event:goal"]) == []


def test_goal_dimension_answers_conversion_rate(live: LiveServer) -> None:
    """query_goal_dimension_test.exs "returns conversion_rate in an event:goal breakdown"
    and "returns conversion_rate alone in an event:goal breakdown"."""
    site = Site(live).add(
        Ev(name="Signup", user=1),
        Ev(name="Signup", user=1),
        Ev(path="/blog"),
        Ev(path="/blog/post"),
        Ev(),
    )
    with_goals(site, ("event", "Signup", "Signup"), ("page", "/blog**", "Visit /blog**"))
    assert site.results(
        metrics=["visitors", "events", "conversion_rate"], dimensions=["event:goal"]
    ) == [row(["Visit /blog**"], [2, 2, 50.0]), row(["Signup"], [1, 2, 25.0])]
    alone = Site(live).add(Ev(name="Signup", user=1), Ev())
    with_goals(alone, ("event", "Signup", "Signup"))
    assert alone.results(metrics=["conversion_rate"], dimensions=["event:goal"]) == [
        row(["Signup"], [50.0])
    ]


def test_goal_filter_contains_matches_goal_names(live: LiveServer) -> None:
    """query_parse_and_build_test.exs "with contains match" / "with case insensitive
    contains match": contains on event:goal picks the goals whose names contain a value."""
    site = Site(live).add(
        Ev(name="Signup"), Ev(name="Purchase"), Ev(name="Contact"), Ev(name="Contact")
    )
    with_goals(
        site,
        ("event", "Signup", "Signup"),
        ("event", "Purchase", "Purchase"),
        ("event", "Contact", "Contact"),
    )
    contains = [["contains", "event:goal", ["Sign", "pur"]]]
    assert site.results(metrics=["events"], filters=contains) == [row([], [1])]
    loose = [["contains", "event:goal", ["sign", "CONT"], {"case_sensitive": False}]]
    assert site.results(metrics=["events"], filters=loose) == [row([], [3])]
    assert site.results(metrics=["events"], dimensions=["event:goal"], filters=loose) == [
        row(["Contact"], [2]),
        row(["Signup"], [1]),
    ]


def test_required_properties_are_named_as_the_schema_names_them(live: LiveServer) -> None:
    """The public schema's "required": ["site_id", "metrics", "date_range"] (ExJsonSchema's
    message at the root, "#")."""
    site = Site(live)
    url = f"{live.url}/api/v2/query"
    answer = httpx.post(url, json={"site_id": site.domain, "metrics": ["visitors"]}, timeout=30)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "#: Required property date_range was not present."},
    )
    answer = httpx.post(url, json={"site_id": site.domain}, timeout=30)
    assert answer.json() == {
        "error": "#: Required properties metrics, date_range were not present."
    }


# --- 2. page filters and bounce rate ---------------------------------------------------


def test_bounce_rate_under_a_page_filter_counts_visits_that_entered_there(
    live: LiveServer,
) -> None:
    """sql/expression.ex session_metric(:bounce_rate): ":TRICKY: If page is passed to
    query, we only count bounce rate where users _entered_ at page" (the top-level
    event:page filter applied to entry_page); visits keep every visit with the page."""
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:00", user=1, path="/a"),
        Ev(ts="2021-01-01 00:01:00", user=1, path="/b"),
        Ev(ts="2021-01-01 00:00:00", user=2, path="/b"),
        Ev(ts="2021-01-01 00:00:00", user=3, path="/a"),
        Ev(ts="2021-01-01 00:00:00", user=4, path="/c"),
        Ev(ts="2021-01-01 00:01:00", user=4, path="/d"),
    )
    on_b = [["is", "event:page", ["/b"]]]
    assert site.results(metrics=["visits", "bounce_rate"], filters=on_b) == [row([], [2, 100])]
    # Without a page filter every visit counts: 2 bounces of 4.
    assert site.results(metrics=["visits", "bounce_rate"]) == [row([], [4, 50])]
    # contains on the page: the entry page must contain it too (/a, entered by 1 and 3).
    on_a = [["contains", "event:page", ["a"]]]
    assert site.results(metrics=["visits", "bounce_rate"], filters=on_a) == [row([], [2, 50])]
    # With an entry page filter, by exit page (the plan that joins each visit to its
    # events; the entry page was ambiguous there, a 500): user 1 entered on /a, left on /b,
    # and entered on no /b page, so no visit counts towards the bounce rate.
    on_b_from_a = [*on_b, ["is", "visit:entry_page", ["/a"]]]
    assert site.results(
        metrics=["visits", "bounce_rate"], filters=on_b_from_a, dimensions=["visit:exit_page"]
    ) == [row(["/b"], [1, 0])]


def test_goal_dimension_outside_the_raw_window_is_refused_as_a_filtered_question(
    live: LiveServer,
) -> None:
    """Each goal's question is a filtered one: rollups can't answer it, so a range past
    the raw window is a 422 (not a silently partial answer from the raw days left)."""
    site = with_goals(Site(live).add(Ev(name="Signup")), ("event", "Signup", "Signup"))
    answer = site.query(
        metrics=["visitors"], dimensions=["event:goal"], date_range=["2020-01-01", "2021-01-01"]
    )
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "filtered queries are only supported inside the 90-day raw event window"},
    )
