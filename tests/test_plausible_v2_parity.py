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
