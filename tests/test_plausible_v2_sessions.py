"""Plausible Stats API v2, the rest of issue #20: visits as Plausible's sessions table
holds them (engagement events don't lengthen them, entry/exit hostnames), bounce_rate as a
whole number, and revenue as its money objects. Each case cites the Plausible code or test
(plausible/analytics) it is taken from; events go through the real ingest pipeline into a
live server's DuckDB, questions over HTTP, numbers worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.query.rollup import build_rollups
from app.storage.goals import add_goal
from tests.conftest import (
    IPHONE_UA,
    LiveServer,
    free_port,
    start_live_server,
    stop_live_server,
)
from tests.test_plausible_v2_parity import FIREFOX_UA, NOW, SAFARI_UA, Ev, Site, row


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("v2sessions") / "data"
    settings = Settings(
        data_dir=str(data), port=free_port(), open_stats_on_loopback=True, run_jobs=False
    )
    server = start_live_server(settings)
    server.services.clock = lambda: NOW
    try:
        yield server
    finally:
        stop_live_server(server)


# Three visits with engagement events (lib/plausible/session/cache_store.ex
# handle_event/4: "pageleave"/"engagement" only keep a session alive in the cache, never
# change its duration, pageviews or is_bounce):
#   user 1: a pageview at 00:00, engagement at 00:05 -> a bounce of 0 s (native: 300 s)
#   user 2: pageviews at 00:00 and 00:01, engagement at 00:10 -> 60 s (native: 600 s)
#   user 3: a pageview at 00:00, engagement at 00:02 -> a bounce of 0 s (native: 120 s)
# Plausible: visit_duration round((0 + 60 + 0) / 3) = 20, bounce_rate round(2/3 * 100) = 67.
# Native: visit_duration (300 + 600 + 120) / 3 = 340, bounce_rate 66.7.
def _engaged(day: str) -> list[Ev]:
    return [
        Ev(ts=f"{day} 00:00:00", user=1, path="/a"),
        Ev(ts=f"{day} 00:05:00", user=1, path="/a", name="engagement", engagement_ms=300_000),
        Ev(ts=f"{day} 00:00:00", user=2, path="/a"),
        Ev(ts=f"{day} 00:01:00", user=2, path="/b"),
        Ev(ts=f"{day} 00:10:00", user=2, path="/b", name="engagement", engagement_ms=540_000),
        Ev(ts=f"{day} 00:00:00", user=3, path="/b"),
        Ev(ts=f"{day} 00:02:00", user=3, path="/b", name="engagement", engagement_ms=120_000),
    ]


def _native(live: LiveServer, site: Site, day: str, metrics: str) -> dict[str, Any]:
    """The native API's aggregate of one day."""
    params = {"site_id": site.site.id, "period": "custom", "from": day, "to": day}
    answer = httpx.get(
        f"{live.url}/api/v1/stats/aggregate", params={**params, "metrics": metrics}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["metrics"]  # type: ignore[no-any-return]


def test_engagement_events_do_not_lengthen_visits(live: LiveServer) -> None:
    """cache_store.ex handle_event/4 (engagement events leave the session as it was) and
    sql/expression.ex session_metric(:visit_duration) / (:bounce_rate) (whole numbers)."""
    site = Site(live).add(*_engaged("2021-01-01"))
    metrics = ["visits", "visit_duration", "bounce_rate"]
    assert site.results(metrics=metrics) == [row([], [3, 20, 67])]
    # Per entry page (the one-pass visit plan): /a entered by 1 and 2, /b by 3.
    assert site.results(metrics=metrics, dimensions=["visit:entry_page"]) == [
        row(["/a"], [2, 30, 50]),
        row(["/b"], [1, 0, 100]),
    ]
    # With an event metric (the sessions CTE plan) and per day (bucketed).
    assert site.results(metrics=["visitors", "visit_duration"], dimensions=["time:day"]) == [
        row(["2021-01-01"], [3, 20])
    ]
    # The native API keeps its definition: pings lengthen visits.
    native = _native(live, site, "2021-01-01", "visit_duration")
    assert native["visit_duration"] == 340


def test_engagement_events_do_not_lengthen_visits_from_rollups(live: LiveServer) -> None:
    """The same visits on a rolled-up day: the rollups hold both durations (events
    migration 008's event_duration), so v2 and native each keep their answer."""
    site = Site(live).add(*_engaged("2020-12-30"))
    build_rollups(live.services.events, site.site.id, "UTC", [date(2020, 12, 30)])
    response = site.query(
        metrics=["visits", "visit_duration", "bounce_rate"],
        date_range=["2020-12-30", "2020-12-30"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["from_rollups"] is True
    assert body["results"] == [row([], [3, 20, 67])]
    by_page = site.query(
        metrics=["visit_duration"],
        dimensions=["visit:entry_page"],
        date_range=["2020-12-30", "2020-12-30"],
    ).json()
    assert by_page["meta"]["from_rollups"] is True
    assert by_page["results"] == [row(["/a"], [30]), row(["/b"], [0])]
    native = _native(live, site, "2020-12-30", "visit_duration")
    assert native["visit_duration"] == 340


def test_bounce_rate_is_a_whole_number(live: LiveServer) -> None:
    """sql/expression.ex session_metric(:bounce_rate): toUInt32(round(... * 100)), so one
    bounce in three visits is 33 (native: 33.3); two in three 67."""
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:00", user=1, path="/a"),
        Ev(ts="2021-01-01 00:00:00", user=2, path="/a"),
        Ev(ts="2021-01-01 00:01:00", user=2, path="/b"),
        Ev(ts="2021-01-01 00:00:00", user=3, path="/a"),
        Ev(ts="2021-01-01 00:01:00", user=3, path="/c"),
    )
    assert site.results(metrics=["bounce_rate"]) == [row([], [33])]
    assert site.results(metrics=["bounce_rate"], dimensions=["event:page"]) == [
        row(["/a"], [33]),
        row(["/b"], [0]),
        row(["/c"], [0]),
    ]
    native = _native(live, site, "2021-01-01", "bounce_rate")
    assert native["bounce_rate"] == 33.3


# A visit that lands on two.example.com (from Google, with UTM values) and goes on to
# one.example.com: query_test.exs "breakdown by #{dimension} when filtered by hostname".
def _two_hosts(site: Site) -> Site:
    return site.add(
        Ev(
            ts="2021-01-01 00:00:00",
            user=1,
            hostname="two.example.com",
            referrer="https://www.google.com/",
            query="?utm_source=ad&utm_medium=ad&utm_campaign=ad&utm_content=ad&utm_term=ad",
        ),
        Ev(ts="2021-01-01 00:15:00", user=1, hostname="one.example.com", path="/next"),
    )


@pytest.mark.parametrize(
    ("dimension", "landed"),
    [
        ("visit:source", "ad"),  # utm_source names the source, as in Plausible
        ("visit:referrer", "google.com"),
        ("visit:utm_source", "ad"),
        ("visit:utm_medium", "ad"),
        ("visit:utm_campaign", "ad"),
        ("visit:utm_content", "ad"),
        ("visit:utm_term", "ad"),
        ("visit:entry_page", "/"),
    ],
)
def test_hostname_filter_keeps_visits_that_landed_elsewhere_out(
    live: LiveServer, dimension: str, landed: str
) -> None:
    """query_test.exs "breakdown by #{dimension} when filtered by hostname" ("nobody landed
    on one.example.com from utm_param=ad": no rows); query_optimizer.ex
    extend_hostname_filters_to_visit adds the filter on visit:entry_page_hostname."""
    site = _two_hosts(Site(live))
    on_one = [["is", "event:hostname", ["one.example.com"]]]
    assert site.results(metrics=["visitors"], dimensions=[dimension], filters=on_one) == []
    on_two = [["is", "event:hostname", ["two.example.com"]]]
    assert site.results(metrics=["visitors"], dimensions=[dimension], filters=on_two) == [
        row([landed], [1])
    ]
    # Without a dimension the filter stays on events: the visitor was on one.example.com.
    assert site.results(metrics=["visitors"], filters=on_one) == [row([], [1])]


def test_hostname_filter_on_exit_pages_reads_the_exit_page_hostname(live: LiveServer) -> None:
    """query_optimizer.ex: "visit:exit_page" => "visit:exit_page_hostname". The visit left
    from one.example.com, so asked with two.example.com it has no exit page."""
    site = _two_hosts(Site(live))
    on_two = [["is", "event:hostname", ["two.example.com"]]]
    assert site.results(metrics=["visits"], dimensions=["visit:exit_page"], filters=on_two) == []
    on_one = [["is", "event:hostname", ["one.example.com"]]]
    assert site.results(metrics=["visits"], dimensions=["visit:exit_page"], filters=on_one) == [
        row(["/next"], [1])
    ]


def test_entry_and_exit_page_hostname_dimensions_and_filters(live: LiveServer) -> None:
    """visit:entry_page_hostname / visit:exit_page_hostname (session/cache_store.ex: the
    hostnames of the visit's first and last pageviews; where_builder.ex @sessions_only_visit_
    fields): user 1 enters on a.example.com and leaves from b.example.com, user 2 stays on
    b.example.com, user 3 on a.example.com."""
    site = Site(live).add(
        Ev(ts="2021-01-01 00:00:00", user=1, hostname="a.example.com", path="/x"),
        Ev(ts="2021-01-01 00:05:00", user=1, hostname="b.example.com", path="/y"),
        Ev(ts="2021-01-01 00:00:00", user=2, hostname="b.example.com", path="/y"),
        Ev(ts="2021-01-01 00:00:00", user=3, hostname="a.example.com", path="/z"),
    )
    assert site.results(metrics=["visits"], dimensions=["visit:entry_page_hostname"]) == [
        row(["a.example.com"], [2]),
        row(["b.example.com"], [1]),
    ]
    assert site.results(metrics=["visits"], dimensions=["visit:exit_page_hostname"]) == [
        row(["b.example.com"], [2]),
        row(["a.example.com"], [1]),
    ]
    entered_a = [["is", "visit:entry_page_hostname", ["a.example.com"]]]
    assert site.results(
        metrics=["visitors", "bounce_rate"], dimensions=["visit:exit_page"], filters=entered_a
    ) == [row(["/y"], [1, 0]), row(["/z"], [1, 100])]
    # A session dimension with an event metric: table_decider.ex's refusal.
    assert site.error(metrics=["pageviews"], dimensions=["visit:entry_page_hostname"]) == (
        "Event metric(s) `pageviews` cannot be queried along with session dimension(s)"
        " `visit:entry_page_hostname`"
    )


# --- money: revenue goals, total_revenue / average_revenue, group_conversion_rate ---------
def _money(value: float, long: str, short: str, currency: str = "USD") -> dict[str, Any]:
    return {"short": short, "long": long, "value": value, "currency": currency}


def _goal(live: LiveServer, site: Site, event: str, currency: str | None, name: str = "") -> None:
    add_goal(live.services.meta, site.site.id, "event", event, name or event, currency)


def _warned(code: str, *metrics: str) -> dict[str, Any]:
    text = {
        "no_single_revenue_currency": "Revenue metrics are null as there are multiple"
        " currencies for the selected event:goals.",
        "no_revenue_goals_matching": "Revenue metrics are null as there are no matching"
        " revenue goals.",
    }[code]
    return {m: {"code": code, "warning": text} for m in metrics}


def _payments(live: LiveServer) -> Site:
    """query_test.exs (stats_controller) "goal filter" cases: Payment 1329 and 1990 USD,
    AddToCart 1031 and 2000 EUR (Decimal.new(13_29) is 1329)."""
    site = Site(live).add(
        Ev(name="Payment", revenue=("1329", "USD")),
        Ev(name="Payment", revenue=("1990", "USD")),
        Ev(name="AddToCart", revenue=("1031", "EUR")),
        Ev(name="AddToCart", revenue=("2000", "EUR")),
    )
    return site


def test_revenue_of_one_revenue_goal_as_money(live: LiveServer) -> None:
    """query_test.exs "returns average and total when filtering by a revenue goal"."""
    site = _payments(live)
    _goal(live, site, "Payment", "USD", "PaymentUSD")
    _goal(live, site, "AddToCart", "EUR", "AddToCartEUR")
    body = site.query(
        metrics=["average_revenue", "total_revenue"],
        filters=[["is", "event:goal", ["PaymentUSD"]]],
    ).json()
    assert body["results"] == [
        row([], [_money(1659.5, "$1,659.50", "$1.7K"), _money(3319.0, "$3,319.00", "$3.3K")])
    ]
    assert "metric_warnings" not in body["meta"]


def test_revenue_of_a_revenue_goal_with_visit_metrics(live: LiveServer) -> None:
    """Revenue in the goal's currency beside metrics of visits (the plan that joins
    sessions: it answered 500, its events lacked the currency column)."""
    site = _payments(live)
    _goal(live, site, "Payment", "USD", "PaymentUSD")
    _goal(live, site, "AddToCart", "EUR", "AddToCartEUR")
    body = site.query(
        metrics=["visits", "visit_duration", "total_revenue"],
        filters=[["is", "event:goal", ["PaymentUSD"]]],
    ).json()
    # Two visits of one event each: no duration.
    assert body["results"] == [row([], [2, 0, _money(3319.0, "$3,319.00", "$3.3K")])]


def test_revenue_of_many_goals_in_one_currency(live: LiveServer) -> None:
    """query_test.exs "returns average and total when filtering by many revenue goals with
    same currency"."""
    site = _payments(live).add(
        Ev(name="Payment2", revenue=("1329", "USD")),
        Ev(name="Payment2", revenue=("1990", "USD")),
    )
    _goal(live, site, "Payment", "USD")
    _goal(live, site, "Payment2", "USD")
    _goal(live, site, "AddToCart", "EUR")
    assert site.results(
        metrics=["average_revenue", "total_revenue"],
        filters=[["is", "event:goal", ["Payment", "Payment2"]]],
    ) == [row([], [_money(1659.5, "$1,659.50", "$1.7K"), _money(6638.0, "$6,638.00", "$6.6K")])]


def test_revenue_of_goals_in_different_currencies_is_null_with_a_warning(
    live: LiveServer,
) -> None:
    """query_test.exs "does not return average and total when filtering by many revenue
    goals with different currencies" (the public API keeps the metrics, null:
    query_parser_test.exs "with event:goal filters with different currencies" ->
    :no_single_revenue_currency, query_result.ex metric_warnings)."""
    site = _payments(live)
    _goal(live, site, "Payment", "USD")
    _goal(live, site, "AddToCart", "EUR")
    metrics = ["visitors", "events", "conversion_rate", "total_revenue", "average_revenue"]
    body = site.query(
        metrics=metrics, filters=[["is", "event:goal", ["Payment", "AddToCart"]]]
    ).json()
    assert body["results"] == [row([], [4, 4, 100.0, None, None])]
    assert body["meta"]["metric_warnings"] == _warned(
        "no_single_revenue_currency", "total_revenue", "average_revenue"
    )


def test_revenue_of_goals_some_without_a_currency(live: LiveServer) -> None:
    """query_test.exs "returns average and total revenue when filtering by many goals some
    which don't have currencies": the average is over the events with revenue."""
    site = Site(live).add(
        Ev(name="Payment", revenue=("1000", "USD")),
        Ev(name="Payment", revenue=("1000", "USD")),
        Ev(name="Signup"),
        Ev(name="Signup"),
    )
    _goal(live, site, "Payment", "USD")
    _goal(live, site, "Signup", None)
    assert site.results(
        metrics=["average_revenue", "total_revenue"],
        filters=[["is", "event:goal", ["Payment", "Signup"]]],
    ) == [row([], [_money(1000.0, "$1,000.00", "$1.0K"), _money(2000.0, "$2,000.00", "$2.0K")])]


def test_revenue_without_conversions_is_zero_money(live: LiveServer) -> None:
    """query_test.exs "returns average and total revenue when no conversions"."""
    site = Site(live).add(Ev(name="pageview"))
    _goal(live, site, "Payment", "USD")
    zero = _money(0.0, "$0.00", "$0.0")
    assert site.results(
        metrics=["average_revenue", "total_revenue"],
        filters=[["is", "event:goal", ["Payment"]]],
    ) == [row([], [zero, zero])]


def test_revenue_of_a_goal_without_currency_is_null_with_a_warning(live: LiveServer) -> None:
    """query_test.exs "does not return average and total revenue when filtering non-currency
    goal"; query_parser_test.exs "can request" (no goals): :no_revenue_goals_matching."""
    site = Site(live).add(
        Ev(name="Payment", revenue=("1000", "USD")),
        Ev(name="Payment", revenue=("1000", "USD")),
    )
    metrics = ["visitors", "events", "conversion_rate", "total_revenue", "average_revenue"]
    body = site.query(metrics=["total_revenue", "average_revenue"]).json()
    assert body["results"] == [row([], [None, None])]
    assert body["meta"]["metric_warnings"] == _warned(
        "no_revenue_goals_matching", "total_revenue", "average_revenue"
    )
    _goal(live, site, "Payment", None, "PaymentWithoutCurrency")
    body = site.query(
        metrics=metrics, filters=[["is", "event:goal", ["PaymentWithoutCurrency"]]]
    ).json()
    assert body["results"] == [row([], [2, 2, 100.0, None, None])]
    assert body["meta"]["metric_warnings"] == _warned(
        "no_revenue_goals_matching", "total_revenue", "average_revenue"
    )


def test_goal_dimension_answers_each_goals_revenue_in_its_currency(live: LiveServer) -> None:
    """query_parser_test.exs "with event:goal dimension, different currencies": revenue
    currencies per goal ("Donation" => :EUR, "Purchase" => :USD), no warning; a goal without
    a currency has null revenue."""
    site = Site(live).add(
        Ev(name="Purchase", revenue=("10", "USD")),
        Ev(name="Purchase", revenue=("30", "USD")),
        Ev(name="Donation", revenue=("5", "EUR")),
        Ev(name="Signup"),
    )
    _goal(live, site, "Purchase", "USD")
    _goal(live, site, "Donation", "EUR")
    _goal(live, site, "Signup", None)
    body = site.query(
        metrics=["visitors", "total_revenue", "average_revenue"], dimensions=["event:goal"]
    ).json()
    assert body["results"] == [
        row(["Purchase"], [2, _money(40.0, "$40.00", "$40.0"), _money(20.0, "$20.00", "$20.0")]),
        row(
            ["Donation"],
            [1, _money(5.0, "€5.00", "€5.0", "EUR"), _money(5.0, "€5.00", "€5.0", "EUR")],
        ),
        row(["Signup"], [1, None, None]),
    ]
    assert "metric_warnings" not in body["meta"]


def test_group_conversion_rate_and_revenue_per_source(live: LiveServer) -> None:
    """sources_test.exs (stats_controller) "return revenue metrics for sources breakdown":
    group_conversion_rate against each source's visitors without the goal filter, revenue
    averaged over the events with revenue (user 7's payment has none). Plausible's
    total_visitors column (an internal metric) is left out."""
    google = "https://google.com/"
    ddg = "https://duckduckgo.com/"
    site = Site(live).add(
        Ev(user=1, referrer=google),
        Ev(user=1, name="Payment", revenue=("1000", "USD"), referrer=google),
        Ev(user=2, referrer=google),
        Ev(user=2, name="Payment", revenue=("2000", "USD"), referrer=google),
        Ev(user=3, referrer=google),
        Ev(user=4, referrer=ddg),
        Ev(user=4, name="Payment", revenue=("500", "USD"), referrer=ddg),
        Ev(user=5, referrer=ddg),
        Ev(user=6),
        Ev(user=6, name="Payment", revenue=("600", "USD")),
        Ev(user=7),
        Ev(user=7, name="Payment"),
        Ev(user=8, referrer="https://bing.com/"),
    )
    _goal(live, site, "Payment", "USD")
    assert site.results(
        metrics=["visitors", "group_conversion_rate", "average_revenue", "total_revenue"],
        dimensions=["visit:source"],
        filters=[["is", "event:goal", ["Payment"]]],
        # Direct visits' source is Plausible's "": first when ascending.
        order_by=[["visitors", "desc"], ["visit:source", "asc"]],
    ) == [
        row(
            ["Direct / None"],
            [2, 100.0, _money(600.0, "$600.00", "$600.0"), _money(600.0, "$600.00", "$600.0")],
        ),
        row(
            ["Google"],
            [2, 66.67, _money(1500.0, "$1,500.00", "$1.5K"), _money(3000.0, "$3,000.00", "$3.0K")],
        ),
        row(
            ["DuckDuckGo"],
            [1, 50.0, _money(500.0, "$500.00", "$500.0"), _money(500.0, "$500.00", "$500.0")],
        ),
    ]


# --- conversion_rate and group_conversion_rate (query_special_metrics_test.exs) ---------
def test_conversion_rate_in_a_custom_property_breakdown_is_against_all_visitors(
    live: LiveServer,
) -> None:
    """query_special_metrics_test.exs "returns conversion_rate in a goal filtered custom
    prop breakdown": 8 visitors in all; "/blog**" matches every /blog page."""
    uku, marko = {"author": "Uku"}, {"author": "Marko"}
    site = Site(live).add(
        Ev(path="/blog/1", props=uku),
        Ev(path="/blog/2", props=uku),
        Ev(path="/blog/3", props=uku),
        Ev(path="/blog/1", props=marko),
        Ev(path="/blog/2", props=marko, user=1),
        Ev(path="/blog/3", props=marko, user=1),
        Ev(path="/blog"),
        Ev(props=marko),
        Ev(),
    )
    add_goal(live.services.meta, site.site.id, "page", "/blog**", "Visit /blog**")
    assert site.results(
        metrics=["visitors", "events", "conversion_rate"],
        dimensions=["event:props:author"],
        filters=[["is", "event:goal", ["Visit /blog**"]]],
    ) == [
        row(["Uku"], [3, 3, 37.5]),
        row(["Marko"], [2, 3, 25.0]),
        row(["(none)"], [1, 1, 12.5]),
    ]


def _devices(live: LiveServer) -> Site:
    """query_special_metrics_test.exs "... multi-goal filtered visit:screen_size breakdown":
    three mobile visitors (two add to cart), two desktop ones (one adds and buys)."""
    site = Site(live).add(
        Ev(ua=IPHONE_UA),
        Ev(ua=IPHONE_UA, name="AddToCart"),
        Ev(ua=IPHONE_UA, name="AddToCart"),
        Ev(user=1, name="AddToCart"),
        Ev(user=1, name="Purchase", ts="2021-01-01 00:00:01"),
        Ev(),
    )
    _goal(live, site, "Purchase", "EUR")  # revenue goals count as any event goal
    _goal(live, site, "AddToCart", None)
    return site


def test_group_conversion_rate_per_device(live: LiveServer) -> None:
    """query_special_metrics_test.exs "returns conversion_rate in a multi-goal filtered
    visit:screen_size breakdown" (group_conversion_rate; Plausible's current
    special_metrics.ex rounds to two places: 66.67 where that older test shows 66.7)."""
    site = _devices(live)
    assert site.results(
        metrics=["visitors", "events", "group_conversion_rate"],
        dimensions=["visit:device"],
        filters=[["is", "event:goal", ["AddToCart", "Purchase"]]],
    ) == [row(["Mobile"], [2, 2, 66.67]), row(["Desktop"], [1, 2, 50.0])]


def test_conversion_rate_per_device_is_against_all_visitors(live: LiveServer) -> None:
    """special_metrics.ex maybe_add_conversion_rate: its total query drops the goal and
    property filters and the dimensions, so each device's converted visitors are a share of
    all 5 (2 / 5 and 1 / 5), unlike group_conversion_rate above (2 / 3 and 1 / 2)."""
    site = _devices(live)
    assert site.results(
        metrics=["visitors", "conversion_rate"],
        dimensions=["visit:device"],
        filters=[["is", "event:goal", ["AddToCart", "Purchase"]]],
    ) == [row(["Mobile"], [2, 40.0]), row(["Desktop"], [1, 20.0])]


def test_group_conversion_rate_per_page(live: LiveServer) -> None:
    """query_special_metrics_test.exs "returns conversion_rate in a goal filtered
    event:page breakdown": /en/register has 3 visitors, 2 signed up."""
    site = Site(live).add(
        Ev(path="/en/register"),
        Ev(path="/en/register", name="Signup"),
        Ev(path="/en/register", name="Signup"),
        Ev(path="/it/register", name="Signup", user=1),
        Ev(path="/it/register", name="Signup", user=1, ts="2021-01-01 00:00:01"),
        Ev(path="/it/register"),
    )
    _goal(live, site, "Signup", None)
    assert site.results(
        metrics=["visitors", "events", "group_conversion_rate"],
        dimensions=["event:page"],
        filters=[["is", "event:goal", ["Signup"]]],
    ) == [row(["/en/register"], [2, 2, 66.67]), row(["/it/register"], [1, 2, 50.0])]


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": ["group_conversion_rate"], "dimensions": ["time:day"]},
        {"metrics": ["average_revenue"], "dimensions": ["visit:source", "time:day"]},
        {"metrics": ["total_revenue"], "dimensions": ["event:goal", "visit:device"]},
        {"metrics": ["conversion_rate", "group_conversion_rate"], "dimensions": ["event:goal"]},
        {
            "metrics": ["total_revenue", "average_revenue"],
            "dimensions": ["visit:source"],
            "order_by": [["average_revenue", "asc"], ["total_revenue", "desc"]],
        },
        {
            "metrics": ["visitors", "group_conversion_rate"],
            "dimensions": ["visit:entry_page_hostname"],
            "order_by": [["group_conversion_rate", "asc"]],
            "include": {"imports": True, "total_rows": True},
        },
    ],
)
def test_money_and_group_metrics_combine_with_any_question(
    live: LiveServer, body: dict[str, Any]
) -> None:
    """Combinations Plausible's tests don't cover answer 200 (never a 500): two visitors on
    example.com, one buys for EUR 12.50 (a revenue goal in EUR)."""
    site = Site(live).add(
        Ev(user=1, referrer="https://google.com/"),
        Ev(user=1, name="Purchase", revenue=("12.5", "EUR"), referrer="https://google.com/"),
        Ev(user=2),
    )
    _goal(live, site, "Purchase", "EUR")
    goal_filter = [] if "event:goal" in body["dimensions"] else [["is", "event:goal", ["Purchase"]]]
    response = site.query(filters=goal_filter, **body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 1
    values = dict(zip(body["metrics"], results[0]["metrics"], strict=True))
    euro = {"short": "€12.5", "long": "€12.50", "value": 12.5, "currency": "EUR"}
    expected = {
        "total_revenue": euro,
        "average_revenue": euro,
        "conversion_rate": 50.0,
        "visitors": 1,
    }
    for metric, value in values.items():
        # group_conversion_rate: every group (the day, the hostname, the goal's) holds both
        # visitors, one of whom bought.
        assert value == (50.0 if metric == "group_conversion_rate" else expected[metric])


def test_revenue_counts_only_on_revenue_goals_events(live: LiveServer) -> None:
    """Plausible keeps revenue only on events that match a revenue goal (its ingest sets
    revenue_reporting_amount from the goal; expression.ex sums that column): a Tip with
    revenue but no goal adds nothing, nor does revenue in another currency."""
    site = Site(live).add(
        Ev(name="Purchase", revenue=("10", "USD")),
        Ev(name="Purchase", revenue=("7", "EUR")),  # not converted: left out
        Ev(name="Tip", revenue=("5", "USD")),
    )
    _goal(live, site, "Purchase", "USD")
    assert site.results(metrics=["total_revenue", "average_revenue"]) == [
        row([], [_money(10.0, "$10.00", "$10.0"), _money(10.0, "$10.00", "$10.0")])
    ]


def test_missing_values_sort_first_when_a_dimension_is_ordered_ascending(
    live: LiveServer,
) -> None:
    """Plausible stores a missing source or UTM value as "" (labelled "Direct / None",
    "(not set)"), so ordering by the dimension ascending lists it first, descending last
    (query_test.exs "simple breakdown by #{dimension}" rows, ordered by the dimension)."""
    site = Site(live).add(
        Ev(referrer="https://google.com/", query="?utm_medium=cpc"),
        Ev(referrer="https://bing.com/"),
        Ev(),
    )
    asc = site.results(
        metrics=["visitors"], dimensions=["visit:source"], order_by=[["visit:source", "asc"]]
    )
    assert [r["dimensions"][0] for r in asc] == ["Direct / None", "Bing", "Google"]
    desc = site.results(
        metrics=["visitors"], dimensions=["visit:source"], order_by=[["visit:source", "desc"]]
    )
    assert [r["dimensions"][0] for r in desc] == ["Google", "Bing", "Direct / None"]
    medium = site.results(
        metrics=["visitors"],
        dimensions=["visit:utm_medium"],
        order_by=[["visit:utm_medium", "asc"]],
    )
    assert medium == [row(["(not set)"], [2]), row(["cpc"], [1])]
    # The same from rollups (a finished, rolled-up day).
    old = Site(live).add(
        Ev(ts="2020-12-29 10:00:00", referrer="https://google.com/"),
        Ev(ts="2020-12-29 10:00:00"),
    )
    build_rollups(live.services.events, old.site.id, "UTC", [date(2020, 12, 29)])
    rolled = old.query(
        metrics=["visitors"],
        dimensions=["visit:source"],
        order_by=[["visit:source", "asc"]],
        date_range=["2020-12-29", "2020-12-29"],
    ).json()
    assert rolled["meta"]["from_rollups"] is True
    assert rolled["results"] == [row(["Direct / None"], [1]), row(["Google"], [1])]


def test_bounce_rate_divides_as_plausible_before_rounding(live: LiveServer) -> None:
    """sql/expression.ex: round(sum(is_bounce) / sum(sign) * 100) in Float64: 23 bounces in
    40 visits is 57.49999999999999 there (23 / 40 * 100), so 57; 100.0 * 23 / 40 is 57.5,
    which would round to 58. Native keeps its one decimal: 57.5."""
    events = [Ev(user=u) for u in range(1, 24)]  # 23 one-page visits
    for u in range(24, 41):  # 17 visits of two pages
        events += [Ev(user=u), Ev(user=u, path="/next", ts="2021-01-01 00:01:00")]
    site = Site(live).add(*events)
    assert site.results(metrics=["visits", "bounce_rate"]) == [row([], [40, 57])]
    assert _native(live, site, "2021-01-01", "bounce_rate")["bounce_rate"] == 57.5


def test_visit_duration_counts_whole_seconds_as_plausible(live: LiveServer) -> None:
    """Plausible's event timestamps are whole seconds (ingestion/request.ex truncates them;
    events_v2.timestamp is a ClickHouse DateTime), so a visit from 00:00:00.900 to
    00:00:10.200 lasts 10 s there (native: 9.3 s, shown as 9)."""
    site = Site(live).add(
        Ev(user=1, ts="2021-01-01 00:00:00.900"),
        Ev(user=1, ts="2021-01-01 00:00:10.200", path="/next"),
    )
    assert site.results(metrics=["visit_duration"]) == [row([], [10])]
    assert site.results(metrics=["visit_duration"], dimensions=["visit:entry_page"]) == [
        row(["/"], [10])
    ]
    assert _native(live, site, "2021-01-01", "visit_duration")["visit_duration"] == 9


# --- contains / matches on relabelled values --------------------------------------------
def test_contains_and_matches_on_device_and_os_test_plausibles_labels(live: LiveServer) -> None:
    """where_builder.ex compares filters with the stored values, and Plausible stores its
    labels ("Mac", "GNU/Linux", "Desktop", "Mobile"): a Mac visitor, a Linux one, a phone."""
    site = Site(live).add(
        Ev(user=1, ua=SAFARI_UA),
        Ev(user=2, ua=FIREFOX_UA),
        Ev(user=3, ua=IPHONE_UA),
    )

    def oses(*filters: list[Any]) -> list[Any]:
        rows = site.results(metrics=["visitors"], dimensions=["visit:os"], filters=list(filters))
        return sorted(r["dimensions"][0] for r in rows)

    assert oses(["contains", "visit:os", ["Mac"]]) == ["Mac"]
    assert oses(["contains", "visit:os", ["mac"]]) == []  # "Mac" has no "mac"
    assert oses(["contains", "visit:os", ["mac"], {"case_sensitive": False}]) == ["Mac"]
    assert oses(["contains", "visit:os", ["macos"], {"case_sensitive": False}]) == []
    assert oses(["contains", "visit:os", ["GNU"]]) == ["GNU/Linux"]
    assert oses(["matches", "visit:os", ["^Mac$"]]) == ["Mac"]
    assert oses(["matches", "visit:os", ["^i"]]) == ["iOS"]  # not renamed: its own label
    assert oses(["contains_not", "visit:os", ["Mac"]]) == ["GNU/Linux", "iOS"]
    assert oses(["matches_not", "visit:os", ["Linux$"]]) == ["Mac", "iOS"]

    def devices(*filters: list[Any]) -> list[Any]:
        rows = site.results(
            metrics=["visitors"], dimensions=["visit:device"], filters=list(filters)
        )
        return sorted(r["dimensions"][0] for r in rows)

    assert devices(["contains", "visit:device", ["Desk"]]) == ["Desktop"]
    assert devices(["contains", "visit:device", ["desk"]]) == []
    assert devices(["matches", "visit:device", ["^M"]]) == ["Mobile"]
    assert devices(["contains_not", "visit:device", ["top"]]) == ["Mobile"]
