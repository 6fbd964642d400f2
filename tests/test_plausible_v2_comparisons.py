"""Plausible v2's include.comparisons (issue #20 item 10), from Plausible's own tests:
test/plausible_web/controllers/api/external_stats_controller/query_comparisons_test.exs
(results), test/plausible/stats/query_parser_test.exs "include.comparisons" (refusals),
lib/plausible/stats/comparisons.ex and compare.ex (periods and change). Plausible answers
them on its dashboard's query path (the same QueryParser, comparisons allowed), and later
versions on the public /api/v2/query too (the later query_comparisons_test.exs posts there);
Avocet's /api/v2/query answers them. Each pageview without a user is its own visitor, as Plausible's
build(:pageview) gives each one a new user_id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import CHROME_UA, LiveServer, free_port, start_live_server, stop_live_server
from tests.test_plausible_v2_parity import FIREFOX_UA, SAFARI_UA, Ev, Site, with_goals

NOW = datetime(2022, 7, 1, 12, 0, tzinfo=UTC)
PREVIOUS = {"comparisons": {"mode": "previous_period"}}
WEEK = ["2021-01-07", "2021-01-13"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("comparisons") / "data"
    settings = Settings(
        data_dir=str(data), port=free_port(), open_stats_on_loopback=True, run_jobs=False
    )
    server = start_live_server(settings)
    server.services.clock = lambda: NOW
    try:
        yield server
    finally:
        stop_live_server(server)


def compared(
    dims: list[Any], metrics: list[Any], then: list[Any], was: list[Any], change: list[Any]
) -> dict[str, Any]:
    return {
        "dimensions": dims,
        "metrics": metrics,
        "comparison": {"dimensions": then, "metrics": was, "change": change},
    }


def test_aggregate_compares_with_the_previous_period(live: LiveServer) -> None:
    """query_comparisons_test.exs "aggregates a single metric": 1 pageview against 3."""
    site = Site(live).add(
        Ev("2021-01-01 00:00:00"),
        Ev("2021-01-01 00:25:00"),
        Ev("2021-01-02 00:00:00"),
        Ev("2021-01-07 00:00:00"),
    )
    response = site.query(metrics=["pageviews"], date_range=WEEK, include=PREVIOUS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"] == [compared([], [1], [], [3], [-67])]
    assert body["query"]["include"]["comparisons"] == {"mode": "previous_period"}
    assert body["query"]["date_range"] == ["2021-01-07T00:00:00Z", "2021-01-14T00:00:00Z"]


def test_time_series_pairs_each_day_with_the_previous_periods_day(live: LiveServer) -> None:
    """query_comparisons_test.exs "timeseries comparison": every day of the week listed,
    each with its day of the previous week; 0 -> 1 is +100, 0 -> 0 is 0, 1 -> 0 is -100."""
    site = Site(live).add(
        Ev("2021-01-01 00:00:00"),
        Ev("2021-01-01 00:25:00"),
        Ev("2021-01-06 00:00:00"),
        Ev("2021-01-07 00:00:00"),
        Ev("2021-01-08 00:00:00"),
    )
    results = site.results(
        metrics=["pageviews"], date_range=WEEK, dimensions=["time:day"], include=PREVIOUS
    )
    assert results == [
        compared(["2021-01-07"], [1], ["2020-12-31"], [0], [100]),
        compared(["2021-01-08"], [1], ["2021-01-01"], [2], [-50]),
        compared(["2021-01-09"], [0], ["2021-01-02"], [0], [0]),
        compared(["2021-01-10"], [0], ["2021-01-03"], [0], [0]),
        compared(["2021-01-11"], [0], ["2021-01-04"], [0], [0]),
        compared(["2021-01-12"], [0], ["2021-01-05"], [0], [0]),
        compared(["2021-01-13"], [0], ["2021-01-06"], [1], [-100]),
    ]


def test_time_series_year_over_year(live: LiveServer) -> None:
    """query_comparisons_test.exs "timeseries last 91d period in year_over_year comparison"
    (its 91d before 2022-07-01 is 2022-04-01..2022-06-30, asked here as that custom range:
    Avocet's 91d ends today): each day against the day 365 days before."""
    site = Site(live).add(
        Ev("2021-04-01 00:00:00"),
        Ev("2021-04-01 00:00:00"),
        Ev("2021-04-05 00:00:00"),
        Ev("2021-04-05 00:00:00"),
        Ev("2021-06-30 00:00:00"),
        Ev("2022-04-01 00:00:00"),
        Ev("2022-04-05 00:00:00"),
        Ev("2022-06-30 00:00:00"),
        Ev("2022-07-01 00:00:00"),
    )
    response = site.query(
        metrics=["visitors"],
        date_range=["2022-04-01", "2022-06-30"],
        dimensions=["time:day"],
        include={"time_labels": True, "comparisons": {"mode": "year_over_year"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    labels = body["meta"]["time_labels"]
    assert (labels[0], labels[4], labels[-1]) == ("2022-04-01", "2022-04-05", "2022-06-30")
    by_day = {r["dimensions"][0]: r for r in body["results"]}
    assert len(body["results"]) == 91  # every day, those without visitors too
    assert by_day["2022-04-01"] == compared(["2022-04-01"], [1], ["2021-04-01"], [2], [-50])
    assert by_day["2022-04-05"] == compared(["2022-04-05"], [1], ["2021-04-05"], [2], [-50])
    assert by_day["2022-06-30"] == compared(["2022-06-30"], [1], ["2021-06-30"], [1], [0])
    assert by_day["2022-04-02"] == compared(["2022-04-02"], [0], ["2021-04-02"], [0], [0])
    # The rows with visitors come first, then the empty days (query_runner.ex
    # add_empty_timeseries_rows appends them to the rows its query found).
    assert [r["dimensions"][0] for r in body["results"][:4]] == [
        "2022-04-01",
        "2022-04-05",
        "2022-06-30",
        "2022-04-02",
    ]


def test_match_day_of_week_moves_the_compared_period_to_the_same_weekday(
    live: LiveServer,
) -> None:
    """comparisons.ex maybe_match_day_of_week: 2022-04-01 is a Friday, 365 days before is
    Thursday 2021-04-01; the nearest Friday Plausible picks is the next one, 2021-04-02,
    and the period keeps its length (to 2021-04-08)."""
    site = Site(live).add(
        Ev("2021-04-01 10:00:00"),  # in the plain period, before the moved one
        Ev("2021-04-01 11:00:00"),
        Ev("2021-04-02 10:00:00"),
        Ev("2021-04-02 11:00:00"),
        Ev("2021-04-08 10:00:00"),
        Ev("2021-04-09 10:00:00"),  # after it
        Ev("2022-04-01 10:00:00"),
    )
    week = ["2022-04-01", "2022-04-07"]
    plain = {"comparisons": {"mode": "year_over_year"}}
    matched = {"comparisons": {"mode": "year_over_year", "match_day_of_week": True}}
    # 2021-04-01 .. 2021-04-07: the two of 04-01 and the two of 04-02
    assert site.results(metrics=["visitors"], date_range=week, include=plain) == [
        compared([], [1], [], [4], [-75])
    ]
    # 2021-04-02 .. 2021-04-08: the two of 04-02 and the one of 04-08
    assert site.results(metrics=["visitors"], date_range=week, include=matched) == [
        compared([], [1], [], [3], [-67])
    ]
    series = site.results(
        metrics=["visitors"], date_range=week, dimensions=["time:day"], include=matched
    )
    assert series[0] == compared(["2022-04-01"], [1], ["2021-04-02"], [2], [-50])
    assert [r["comparison"]["dimensions"][0] for r in series][-1] == "2021-04-08"


def test_custom_comparison_range(live: LiveServer) -> None:
    """query_parser_test.exs "mode=custom": a date_range of its own to compare with."""
    site = Site(live).add(
        Ev("2020-12-01 10:00:00"),
        Ev("2020-12-02 10:00:00"),
        Ev("2020-12-03 10:00:00"),
        Ev("2020-12-04 10:00:00"),  # after the compared range
        Ev("2021-01-07 10:00:00"),
        Ev("2021-01-08 10:00:00"),
    )
    custom = {"comparisons": {"mode": "custom", "date_range": ["2020-12-01", "2020-12-03"]}}
    response = site.query(metrics=["visitors", "pageviews"], date_range=WEEK, include=custom)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [compared([], [2, 2], [], [3, 3], [-33, -33])]
    assert response.json()["query"]["include"]["comparisons"] == custom["comparisons"]


def test_dimension_rows_compare_the_same_values_outside_the_page(live: LiveServer) -> None:
    """query_comparisons_test.exs "dimensional comparison with low limit": the compared
    period's rows of the same browsers, whatever its own order, and percentage against
    its own visitors (8): Chrome 50.0 from 12.5 is +300."""
    site = Site(live)
    before = [(FIREFOX_UA, 4), (SAFARI_UA, 3), (CHROME_UA, 1)]
    events = [Ev("2021-01-01 00:00:00", ua=ua) for ua, n in before for _ in range(n)]
    events += [Ev("2021-01-07 00:00:00", ua=CHROME_UA) for _ in range(3)]
    events += [Ev("2021-01-07 00:00:00", ua=FIREFOX_UA) for _ in range(2)]
    events += [Ev("2021-01-08 00:00:00", ua=SAFARI_UA)]
    site.add(*events)
    body: dict[str, Any] = {
        "metrics": ["visitors", "percentage"],
        "date_range": WEEK,
        "dimensions": ["visit:browser"],
        "include": PREVIOUS,
    }
    assert site.results(**body, pagination={"limit": 2}) == [
        compared(["Chrome"], [3, 50.0], ["Chrome"], [1, 12.5], [200, 300]),
        compared(["Firefox"], [2, 33.3], ["Firefox"], [4, 50.0], [-50, -33]),
    ]
    assert site.results(**body, pagination={"limit": 2, "offset": 2}) == [
        compared(["Safari"], [1, 16.7], ["Safari"], [3, 37.5], [-67, -55]),
    ]


def test_bounce_rate_changes_in_points_and_is_null_from_zero(live: LiveServer) -> None:
    """compare.ex calculate_change(:bounce_rate): new - old when old > 0, else nil."""
    site = Site(live).add(
        Ev("2020-12-31 10:00:00", user=1),
        Ev("2020-12-31 10:05:00", user=1, path="/two"),  # one visit of two pages
        Ev("2020-12-31 11:00:00", user=2),  # a bounce: 50 % before
        Ev("2021-01-07 10:00:00", user=3),  # a bounce: 100 % now
    )
    results = site.results(metrics=["visitors", "bounce_rate"], date_range=WEEK, include=PREVIOUS)
    assert results == [compared([], [1, 100], [], [2, 50], [-50, 50])]
    later = ["2021-01-14", "2021-01-20"]  # compared with WEEK: one bounce, 100 -> 0 visits
    assert site.results(
        metrics=["visitors", "bounce_rate"], date_range=later, include=PREVIOUS
    ) == [compared([], [0, 0], [], [1, 100], [-100, -100])]
    earlier = ["2020-12-24", "2020-12-30"]  # nothing before it: bounce rate 0, change null
    assert site.results(
        metrics=["visitors", "bounce_rate"], date_range=earlier, include=PREVIOUS
    ) == [compared([], [0, 0], [], [0, 0], [0, None])]


def test_comparisons_at_the_plausible_prefix(live: LiveServer) -> None:
    """/plausible/api/v2/query is the same handler."""
    site = Site(live).add(Ev("2021-01-01 00:00:00"), Ev("2021-01-07 00:00:00"))
    body = {
        "site_id": site.domain,
        "metrics": ["pageviews"],
        "date_range": WEEK,
        "include": PREVIOUS,
    }
    response = httpx.post(f"{live.url}/plausible/api/v2/query", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [compared([], [1], [], [1], [0])]


@pytest.mark.parametrize(
    ("comparisons", "message"),
    [
        # query_parser_test.exs "mode=custom without date_range is invalid"
        (
            {"mode": "custom"},
            "#/include/comparisons: Expected exactly one of the schemata to match, but none"
            " of them did.",
        ),
        # query_parser_test.exs "mode=previous_period with date_range is invalid"
        (
            {"mode": "previous_period", "date_range": ["2024-01-01", "2024-01-31"]},
            "#/include/comparisons: Expected exactly one of the schemata to match, but none"
            " of them did.",
        ),
        # the same oneOf: a mode the schema lacks, or no object
        (
            {"mode": "last_week"},
            "#/include/comparisons: Expected exactly one of the schemata to match, but none"
            " of them did.",
        ),
        (
            "previous_period",
            "#/include/comparisons: Expected exactly one of the schemata to match, but none"
            " of them did.",
        ),
    ],
)
def test_invalid_comparisons_are_refused_with_plausibles_message(
    live: LiveServer, comparisons: Any, message: str
) -> None:
    site = Site(live)
    assert site.error(metrics=["visitors"], include={"comparisons": comparisons}) == message


def test_conversion_rate_changes_in_points(live: LiveServer) -> None:
    """compare.ex calculate_change(:conversion_rate): Float.round(new - old, 1). The week
    before: 1 of 2 visitors converted (50.0); this week 1 of 3 (33.33): -16.7 points, and
    visitors 1 -> 1 is 0 %."""
    site = Site(live).add(
        Ev("2022-06-10 00:00:00", name="Signup"),
        Ev("2022-06-11 00:00:00", path="/thanks"),
        Ev("2022-06-17 00:00:00", name="Signup"),
        Ev("2022-06-17 00:00:00", referrer="https://google.com/"),
        Ev("2022-06-18 00:00:00"),
    )
    with_goals(site, ("event", "Signup", "Signup"))
    week = ["2022-06-17", "2022-06-23"]
    assert site.results(
        metrics=["visitors", "conversion_rate"],
        date_range=week,
        filters=[["is", "event:goal", ["Signup"]]],
        include=PREVIOUS,
    ) == [compared([], [1, 33.33], [], [1, 50.0], [0, -16.7])]
    assert site.results(
        metrics=["visitors", "conversion_rate", "events"],
        date_range=week,
        dimensions=["event:goal"],
        include=PREVIOUS,
    ) == [compared(["Signup"], [1, 33.33, 1], ["Signup"], [1, 50.0, 1], [0, -16.7, 0])]


def test_compared_rows_of_plausibles_labels(live: LiveServer) -> None:
    """The compared period's row of `Direct / None` (visits without a source) and of a
    renamed value (`Desktop`), found by the label the question's row has; percentage is
    of all the compared period's visitors (3), not of the listed rows only
    (query_runner.ex: the comparison filters are ignore_in_totals_query)."""
    google = "https://www.google.com/"
    site = Site(live).add(
        Ev("2020-12-31 10:00:00"),
        Ev("2020-12-31 10:00:00", referrer=google),
        Ev("2020-12-31 10:00:00", referrer=google),
        Ev("2021-01-07 10:00:00"),
        Ev("2021-01-07 10:00:00"),
        Ev("2021-01-07 10:00:00", referrer=google),
    )
    body: dict[str, Any] = {"date_range": WEEK, "include": PREVIOUS}
    assert site.results(
        metrics=["visitors", "percentage"],
        dimensions=["visit:source"],
        pagination={"limit": 1},
        **body,
    ) == [compared(["Direct / None"], [2, 66.7], ["Direct / None"], [1, 33.3], [100, 100])]
    assert site.results(metrics=["visitors"], dimensions=["visit:device"], **body) == [
        compared(["Desktop"], [3], ["Desktop"], [3], [0])
    ]


# From the later query_comparisons_test.exs, whose requests go to the public /api/v2/query.
SERIES = [
    Ev("2021-05-27 00:00:00"),
    Ev("2021-05-28 00:00:00"),
    Ev("2021-05-30 00:00:00"),
    Ev("2021-05-30 00:00:00"),
    Ev("2021-05-31 00:00:00"),
    Ev("2021-06-01 00:00:00"),
    Ev("2021-06-02 00:00:00"),
    Ev("2021-06-02 00:00:00"),
    Ev("2021-06-03 00:00:00"),
]
JUNE = ["2021-06-01", "2021-06-04"]


def test_public_aggregate_previous_period(live: LiveServer) -> None:
    """query_comparisons_test.exs "aggregate previous_period comparison": May (31 days)
    against 2021-03-31 .. 2021-04-30."""
    site = Site(live).add(
        Ev("2021-04-20 00:00:00"),
        Ev("2021-05-01 00:00:00"),
        Ev("2021-05-02 00:00:00"),
        Ev("2021-05-03 00:00:00"),
    )
    assert site.results(
        metrics=["pageviews"], date_range=["2021-05-01", "2021-05-31"], include=PREVIOUS
    ) == [compared([], [3], [], [1], [200])]


def test_public_utm_source_previous_period(live: LiveServer) -> None:
    """query_comparisons_test.exs "utm_source previous_period comparison"."""
    site = Site(live).add(
        *(Ev(f"2021-04-2{d} 00:00:00", query="?utm_source=Google") for d in range(4)),
        Ev("2021-04-24 00:00:00", query="?utm_source=Bing"),
        Ev("2021-05-01 00:00:00", query="?utm_source=Google"),
        Ev("2021-05-02 00:00:00"),
        Ev("2021-05-03 00:00:00", query="?utm_source=Facebook"),
        Ev("2021-05-04 00:00:00", query="?utm_source=Google"),
    )
    assert site.results(
        metrics=["pageviews"],
        date_range=["2021-05-01", "2021-05-31"],
        dimensions=["visit:utm_source"],
        include=PREVIOUS,
    ) == [
        compared(["Google"], [2], ["Google"], [4], [-50]),
        compared(["Facebook"], [1], ["Facebook"], [0], [100]),
        compared(["(not set)"], [1], ["(not set)"], [0], [100]),
    ]


def test_public_time_series_previous_period(live: LiveServer) -> None:
    """query_comparisons_test.exs "time series previous_period comparison"."""
    site = Site(live).add(*SERIES)
    assert site.results(
        metrics=["pageviews"], date_range=JUNE, dimensions=["time:day"], include=PREVIOUS
    ) == [
        compared(["2021-06-01"], [1], ["2021-05-28"], [1], [0]),
        compared(["2021-06-02"], [2], ["2021-05-29"], [0], [100]),
        compared(["2021-06-03"], [1], ["2021-05-30"], [2], [-50]),
        compared(["2021-06-04"], [0], ["2021-05-31"], [1], [-100]),
    ]


def test_public_time_series_previous_period_matching_the_day_of_week(live: LiveServer) -> None:
    """query_comparisons_test.exs "time series previous_period comparison with
    match_day_of_week": the previous period starts on Friday 05-28; the next Tuesday is
    06-01, the period's own first day, so the Tuesday before, 05-25."""
    site = Site(live).add(*SERIES)
    matched = {"comparisons": {"mode": "previous_period", "match_day_of_week": True}}
    assert site.results(
        metrics=["pageviews"], date_range=JUNE, dimensions=["time:day"], include=matched
    ) == [
        compared(["2021-06-01"], [1], ["2021-05-25"], [0], [100]),
        compared(["2021-06-02"], [2], ["2021-05-26"], [0], [100]),
        compared(["2021-06-03"], [1], ["2021-05-27"], [1], [0]),
        compared(["2021-06-04"], [0], ["2021-05-28"], [1], [-100]),
    ]


def test_public_time_series_year_over_year(live: LiveServer) -> None:
    """query_comparisons_test.exs "time series year_over_year comparison": 365 days
    before 2020-01-01 is 2019-01-01."""
    site = Site(live).add(
        Ev("2020-01-01 00:00:00"),
        Ev("2020-01-05 00:00:00"),
        Ev("2020-01-30 00:00:00"),
        Ev("2020-01-31 00:00:00"),
        Ev("2019-01-01 00:00:00"),
        Ev("2019-01-01 00:00:00"),
        Ev("2019-01-05 00:00:00"),
        Ev("2019-01-05 00:00:00"),
        Ev("2019-01-31 00:00:00"),
    )
    results = site.results(
        metrics=["pageviews"],
        date_range=["2020-01-01", "2020-01-31"],
        dimensions=["time:day"],
        include={"comparisons": {"mode": "year_over_year"}},
    )
    by_day = {r["dimensions"][0]: r for r in results}
    assert by_day["2020-01-01"] == compared(["2020-01-01"], [1], ["2019-01-01"], [2], [-50])
    assert by_day["2020-01-05"] == compared(["2020-01-05"], [1], ["2019-01-05"], [2], [-50])
    assert by_day["2020-01-31"] == compared(["2020-01-31"], [1], ["2019-01-31"], [1], [0])


def test_public_time_series_custom_range(live: LiveServer) -> None:
    """query_comparisons_test.exs "time series custom date range comparison": days
    paired by position."""
    site = Site(live).add(
        Ev("2021-05-01 00:00:00"),
        Ev("2021-05-02 00:00:00"),
        Ev("2021-05-03 00:00:00"),
        Ev("2021-05-03 00:00:00"),
        Ev("2021-05-04 00:00:00"),
        *SERIES[5:],
    )
    custom = {"comparisons": {"mode": "custom", "date_range": ["2021-05-01", "2021-05-04"]}}
    assert site.results(
        metrics=["pageviews"], date_range=JUNE, dimensions=["time:day"], include=custom
    ) == [
        compared(["2021-06-01"], [1], ["2021-05-01"], [1], [0]),
        compared(["2021-06-02"], [2], ["2021-05-02"], [1], [100]),
        compared(["2021-06-03"], [1], ["2021-05-03"], [2], [-50]),
        compared(["2021-06-04"], [0], ["2021-05-04"], [1], [-100]),
    ]
