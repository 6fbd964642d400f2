"""Plausible's Stats API v1 at /plausible: real clients' requests replayed as they build them
(Airbyte's source-plausible manifest, the plausible-mcp server), Plausible's own test
cases for shapes and errors, against a small dataset sent through the real ingest pipeline
whose numbers are worked out by hand below."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.storage.accounts import User, set_role
from app.storage.goals import add_goal
from tests.accounts_fixtures import World, auth_settings
from tests.conftest import CHROME_UA, IPHONE_UA, start_live_server, stop_live_server
from tests.test_imports import FIXTURES, cli, new_data_dir

NOW = datetime(2021, 1, 5, 12, 0, tzinfo=UTC)
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
GOOGLE = "https://www.google.com/"
TWITTER = "https://t.co/abc"
SHOP = "shop.example"

# (time, visitor, name, path, referrer, props). Visitors: (ip, user agent).
U1, U2, U3 = ("10.0.0.1", CHROME_UA), ("10.0.0.2", IPHONE_UA), ("10.0.0.3", FIREFOX_UA)
U4, U5 = ("10.0.0.4", CHROME_UA), ("10.0.0.5", CHROME_UA)
DATASET: list[tuple[str, tuple[str, str], str, str, str | None, dict[str, str]]] = [
    # 2021-01-01: three visits
    ("2021-01-01 10:00:00", U1, "pageview", "/", GOOGLE, {}),
    ("2021-01-01 10:05:00", U1, "pageview", "/blog/one", None, {}),
    ("2021-01-01 10:06:00", U1, "Signup", "/blog/one", None, {"plan": "pro"}),
    ("2021-01-01 11:00:00", U2, "pageview", "/", None, {}),
    ("2021-01-01 12:00:00", U3, "pageview", "/blog/two", TWITTER, {}),
    ("2021-01-01 12:10:00", U3, "pageview", "/docs", None, {}),
    # 2021-01-02: two visits
    ("2021-01-02 09:00:00", U4, "pageview", "/blog/one", GOOGLE, {}),
    ("2021-01-02 15:00:00", U2, "pageview", "/docs", None, {}),
    ("2021-01-02 15:01:00", U2, "pageview", "/", None, {}),
    ("2021-01-02 15:02:00", U2, "Signup", "/", None, {"plan": "free"}),
    # 2021-01-04: one visit
    ("2021-01-04 08:00:00", U5, "pageview", "/", None, {}),
]
# By hand, per day (visitor ids are salted per day, so U2 is a visitor on each day):
#   01: visitors 3, visits 3, pageviews 5, events 6, bounces 1 (U2) -> 33 %,
#       durations 360 + 0 + 600 -> 320 s, views per visit 5/3 = 1.67
#   02: visitors 2, visits 2, pageviews 3, events 4, bounces 1 (U4) -> 50 %,
#       durations 0 + 120 -> 60 s
#   04: visitors 1, visits 1, pageviews 1, events 1, bounce 100 %, duration 0
# 2021-01-01..05: visitors 6, visits 6, pageviews 9, events 11, bounces 3 -> 50 %,
#   durations 1080 / 6 = 180 s, views per visit 1.5
DAY1 = {"visitors": 3, "pageviews": 5, "bounce_rate": 33, "visit_duration": 320, "visits": 3}
DAY2 = {"visitors": 2, "pageviews": 3, "bounce_rate": 50, "visit_duration": 60, "visits": 2}
DAY4 = {"visitors": 1, "pageviews": 1, "bounce_rate": 100, "visit_duration": 0, "visits": 1}
EMPTY = {"visitors": 0, "pageviews": 0, "bounce_rate": 0, "visit_duration": None, "visits": 0}


class Plausible:
    """The server, its owner's keys and the shop site loaded with DATASET."""

    def __init__(
        self, world: World, owner: User, token: str, sites_token: str, other_token: str
    ) -> None:
        self.world, self.owner, self.token = world, owner, token
        self.site_id = str(world.live.services.sites.by_domain(SHOP).id)  # type: ignore[union-attr]
        self.sites_token, self.other_token = sites_token, other_token
        self.url = f"{world.live.url}/plausible"

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=30)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, path: str, status: int = 400, token: str | None = None, **params: Any) -> str:
        response = self.get(path, token, **params)
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error"}, body
        return str(body["error"])


@pytest.fixture(scope="module")
def pl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plausible]:
    # Raw events kept 400 days: the docs' examples ask 6 months with filters (past the raw
    # window, a filtered question is a 422 here; see the README).
    live = start_live_server(
        auth_settings(tmp_path_factory.mktemp("v1"), raw_retention_days=400, run_jobs=False)
    )
    world = World(live)
    owner = world.user("owner@example.com")
    stranger = world.user("stranger@example.com")
    site_id = world.site(SHOP, owner)
    world.site("other.example", stranger)
    svc = live.services
    svc.clock = lambda: NOW
    site = svc.sites.by_id(site_id)
    assert site is not None
    rows = []
    for ts, (ip, ua), name, path, referrer, props in DATASET:
        hit = Hit(
            name=name,
            url=f"https://{SHOP}{path}",
            site_id=site_id,
            referrer=referrer,
            props=tuple(props.items()),
        )
        stamp = datetime.fromisoformat(ts).replace(tzinfo=UTC)
        row = svc.ingest.build(hit, site, Client(ip, ua), int(stamp.timestamp() * 1e6))
        assert not isinstance(row, Drop), (ts, row)
        rows.append(row)
    svc.events.append(rows)
    add_goal(svc.meta, site_id, "event", "Signup", "Signup")
    add_goal(svc.meta, site_id, "page", "/docs", "Visit /docs")
    token = world.key(owner, None, ("stats:read",))
    sites_token = world.key(owner, None, ("sites:read", "sites:write"))
    other_token = world.key(stranger, None, ("stats:read",))
    try:
        yield Plausible(world, owner, token, sites_token, other_token)
    finally:
        stop_live_server(live)


# --- Airbyte's source-plausible 0.1.14 (PyPI airbyte-source-plausible) -----------------
# source_plausible/manifest.yaml: url_base "{{ config['api_url'] or
# 'https://plausible.io/api/v1/stats' }}", BearerAuthenticator, stream "stats":
AIRBYTE_PATH = "/timeseries"
AIRBYTE_PARAMS = {
    "site_id": "{{ config['site_id'] }}",
    "period": "custom",
    "metrics": "visitors,pageviews,bounce_rate,visit_duration,visits",
    "date": "{{ config['start_date'] or '2019-01-01' }},{{ today_utc() }}",
}


def airbyte_records(pl: Plausible, config: dict[str, str]) -> list[dict[str, Any]]:
    """The request the manifest builds (parameters rendered as the CDK's Jinja does), and
    its record selector: results[], keeping records whose bounce_rate is not none."""
    render = jinja2.Environment()
    params = {
        k: render.from_string(v).render(config=config, today_utc=lambda: "2021-01-05")
        for k, v in AIRBYTE_PARAMS.items()
    }
    url = (config["api_url"] or "https://plausible.io/api/v1/stats") + AIRBYTE_PATH
    response = httpx.get(
        url, params=params, headers={"Authorization": f"Bearer {config['api_key']}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return [r for r in response.json()["results"] if r["bounce_rate"] is not None]


def test_airbyte_stats_stream_reads_daily_rows_when_api_url_points_at_plausible_root(
    pl: Plausible,
) -> None:
    config = {
        "api_key": pl.token,
        "site_id": SHOP,
        "api_url": f"{pl.url}/api/v1/stats",
        "start_date": "2021-01-01",
    }
    assert airbyte_records(pl, config) == [
        {"date": "2021-01-01", **DAY1},
        {"date": "2021-01-02", **DAY2},
        {"date": "2021-01-03", **EMPTY},
        {"date": "2021-01-04", **DAY4},
        {"date": "2021-01-05", **EMPTY},
    ]


def test_airbyte_check_fails_with_plausibles_401_when_key_is_wrong(pl: Plausible) -> None:
    response = httpx.get(
        f"{pl.url}/api/v1/stats/timeseries",
        params={"site_id": SHOP, "period": "custom", "date": "2021-01-01,2021-01-05"},
        headers={"Authorization": "Bearer not-a-key"},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid API key or site ID. Please make sure you're using a valid API key"
        " with access to the site you've requested."
    }


# --- plausible-mcp 0.1.2 (PyPI plausible-mcp, plausible_mcp/server.py) -------------------
# make_plausible_request: f"{PLAUSIBLE_BASE_URL}{endpoint}?{urlencode(params)}" with
# Authorization: Bearer, User-Agent plausible-mcp/<version>, Accept: application/json.


def mcp_request(pl: Plausible, endpoint: str, params: dict[str, Any]) -> Any:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{pl.url}{endpoint}" + (f"?{query}" if query else "")
    headers = {
        "Authorization": f"Bearer {pl.token}",
        "User-Agent": "plausible-mcp/0.1.2",
        "Accept": "application/json",
    }
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_mcp_aggregate_with_its_default_metrics_over_a_custom_range(pl: Plausible) -> None:
    # get_aggregate_stats(site_id, date_range="2021-01-01,2021-01-05"): resolve_date_params
    # -> ("custom", the range); metrics default visitors,pageviews,bounce_rate,visit_duration.
    params = {
        "site_id": SHOP,
        "period": "custom",
        "metrics": "visitors,pageviews,bounce_rate,visit_duration",
        "date": "2021-01-01,2021-01-05",
    }
    assert mcp_request(pl, "/api/v1/stats/aggregate", params) == {
        "results": {
            "visitors": {"value": 6},
            "pageviews": {"value": 9},
            "bounce_rate": {"value": 50},
            "visit_duration": {"value": 180},
        }
    }


def test_mcp_breakdown_by_page_alias_for_one_day(pl: Plausible) -> None:
    # get_breakdown(site_id, property_name="page", date_range="2021-01-01", limit=20):
    # alias page -> event:page, a bare date -> period=day&date=...
    params = {"site_id": SHOP, "property": "event:page", "period": "day", "limit": 20}
    params["date"] = "2021-01-01"
    # Visitors per page on day 1: / (U1, U2) 2, /blog/one (U1) 1, /blog/two (U3) 1,
    # /docs (U3) 1; ties by page ascending.
    assert mcp_request(pl, "/api/v1/stats/breakdown", params) == {
        "results": [
            {"page": "/", "visitors": 2},
            {"page": "/blog/one", "visitors": 1},
            {"page": "/blog/two", "visitors": 1},
            {"page": "/docs", "visitors": 1},
        ]
    }


def test_mcp_timeseries_with_legacy_date_interval(pl: Plausible) -> None:
    # get_timeseries(site_id, date_range="2021-01-01,2021-01-03") sends interval=date,
    # which Plausible reads as day; metrics default to visitors.
    params = {"site_id": SHOP, "period": "custom", "interval": "date"}
    params["date"] = "2021-01-01,2021-01-03"
    assert mcp_request(pl, "/api/v1/stats/timeseries", params) == {
        "results": [
            {"date": "2021-01-01", "visitors": 3},
            {"date": "2021-01-02", "visitors": 2},
            {"date": "2021-01-03", "visitors": 0},
        ]
    }


# --- Plausible's documented examples and its controller tests' shapes ------------------


def test_aggregate_compare_previous_period_has_value_comparison_value_and_change(
    pl: Plausible,
) -> None:
    """aggregate_test.exs "compare period=day with previous period": pageviews 3 vs 5 on
    the day before (-40 %), bounce_rate 50 vs 33 (+17 points), duration 60 vs 320."""
    body = pl.ok(
        "/api/v1/stats/aggregate",
        site_id=SHOP,
        period="day",
        date="2021-01-02",
        metrics="pageviews,visitors,bounce_rate,visit_duration,visits,views_per_visit,events",
        compare="previous_period",
    )
    assert body == {
        "results": {
            "pageviews": {"value": 3, "comparison_value": 5, "change": -40},
            "visitors": {"value": 2, "comparison_value": 3, "change": -33},
            "bounce_rate": {"value": 50, "comparison_value": 33, "change": 17},
            "visit_duration": {"value": 60, "comparison_value": 320, "change": -81},
            "visits": {"value": 2, "comparison_value": 3, "change": -33},
            "views_per_visit": {"value": 1.5, "comparison_value": 1.67, "change": -10},
            "events": {"value": 4, "comparison_value": 6, "change": -33},
        }
    }


def test_aggregate_defaults_to_visitors_and_filters_in_v1_syntax(pl: Plausible) -> None:
    custom = {"site_id": SHOP, "period": "custom", "date": "2021-01-01,2021-01-05"}
    assert pl.ok("/api/v1/stats/aggregate", **custom) == {"results": {"visitors": {"value": 6}}}
    # event:page wildcard: visits with a /blog page: U1 d1, U3 d1, U4 d2.
    blog = pl.ok("/api/v1/stats/aggregate", **custom, filters="event:page==/blog/**")
    assert blog == {"results": {"visitors": {"value": 3}}}
    # a list, and a negation: pages / or /docs -> U1, U2, U3 on d1, U2 on d2, U5 on d4.
    listed = pl.ok("/api/v1/stats/aggregate", **custom, filters="event:page==/|/docs")
    assert listed["results"]["visitors"]["value"] == 5
    not_root = pl.ok("/api/v1/stats/aggregate", **custom, filters="event:page!=/")
    assert not_root["results"]["visitors"]["value"] == 4  # U1 d1, U3 d1, U4, U2 d2
    # visit:source by its label; Direct / None are the visits without a referrer.
    google = pl.ok(
        "/api/v1/stats/aggregate",
        **custom,
        metrics="visitors,pageviews",
        filters="visit:source==Google",
    )
    assert google == {"results": {"visitors": {"value": 2}, "pageviews": {"value": 3}}}
    direct = pl.ok("/api/v1/stats/aggregate", **custom, filters="visit:source==Direct / None")
    assert direct["results"]["visitors"]["value"] == 3  # U2 d1, U2 d2, U5
    # two filters and-ed with ;
    both = pl.ok(
        "/api/v1/stats/aggregate", **custom, filters="visit:source==Google;event:page==/blog/one"
    )
    assert both["results"]["visitors"]["value"] == 2


def test_aggregate_goal_filter_and_conversion_rate(pl: Plausible) -> None:
    body = pl.ok(
        "/api/v1/stats/aggregate",
        site_id=SHOP,
        period="custom",
        date="2021-01-01,2021-01-05",
        metrics="visitors,events,conversion_rate",
        filters="event:goal==Signup",
    )
    # Signup: U1 d1 and U2 d2, 2 of 6 visitors.
    assert body == {
        "results": {
            "visitors": {"value": 2},
            "events": {"value": 2},
            "conversion_rate": {"value": 33.33},
        }
    }


def test_timeseries_shapes_for_day_6mo_and_month_intervals(pl: Plausible) -> None:
    hours = pl.ok("/api/v1/stats/timeseries", site_id=SHOP, period="day", date="2021-01-04")
    assert len(hours["results"]) == 24
    assert hours["results"][8] == {"date": "2021-01-04 08:00:00", "visitors": 1}
    assert hours["results"][0] == {"date": "2021-01-04 00:00:00", "visitors": 0}
    months = pl.ok("/api/v1/stats/timeseries", site_id=SHOP, period="6mo", date="2021-01-05")
    assert months == {
        "results": [
            {"date": "2020-08-01", "visitors": 0},
            {"date": "2020-09-01", "visitors": 0},
            {"date": "2020-10-01", "visitors": 0},
            {"date": "2020-11-01", "visitors": 0},
            {"date": "2020-12-01", "visitors": 0},
            {"date": "2021-01-01", "visitors": 6},
        ]
    }
    seven = pl.ok("/api/v1/stats/timeseries", site_id=SHOP, period="7d", metrics="pageviews")
    # 7d: the seven days before the anchor (today, 2021-01-05), the anchor left out, as
    # timeseries_test.exs "shows last 7 days of visitors" (date 2021-01-08 -> 01..07)
    assert seven["results"][0]["date"] == "2020-12-29"
    assert [r["pageviews"] for r in seven["results"]] == [0, 0, 0, 5, 3, 0, 1]
    # no period: 30d, the 30 days before the anchor (U5's visit on 01-04 is the anchor's)
    assert pl.ok("/api/v1/stats/aggregate", site_id=SHOP) == {"results": {"visitors": {"value": 6}}}
    before = pl.ok("/api/v1/stats/aggregate", site_id=SHOP, date="2021-01-04")
    assert before == {"results": {"visitors": {"value": 5}}}


def test_breakdown_shapes_sources_goals_props_and_pages(pl: Plausible) -> None:
    custom = {"site_id": SHOP, "period": "custom", "date": "2021-01-01,2021-01-05"}
    sources = pl.ok(
        "/api/v1/stats/breakdown", **custom, property="visit:source", metrics="visitors,bounce_rate"
    )
    # Direct / None: U2 d1 (bounce), U2 d2, U5 (bounce) -> 67 %; Google: U1, U4 (bounce).
    assert sources == {
        "results": [
            {"source": "Direct / None", "visitors": 3, "bounce_rate": 67},
            {"source": "Google", "visitors": 2, "bounce_rate": 50},
            {"source": "Twitter", "visitors": 1, "bounce_rate": 0},
        ]
    }
    goals = pl.ok(
        "/api/v1/stats/breakdown",
        **custom,
        property="event:goal",
        metrics="visitors,events,conversion_rate",
    )
    # Visit /docs: U3 d1, U2 d2 (2 of 6); Signup: U1 d1, U2 d2.
    assert goals == {
        "results": [
            {"goal": "Signup", "visitors": 2, "events": 2, "conversion_rate": 33.33},
            {"goal": "Visit /docs", "visitors": 2, "events": 2, "conversion_rate": 33.33},
        ]
    }
    plans = pl.ok(
        "/api/v1/stats/breakdown",
        **custom,
        property="event:props:plan",
        filters="event:name==Signup",
    )
    assert plans == {"results": [{"plan": "free", "visitors": 1}, {"plan": "pro", "visitors": 1}]}
    paged = pl.ok("/api/v1/stats/breakdown", **custom, property="event:page", limit="2", page="2")
    # visitors per page: / 4 (U1, U2 d1, U2 d2, U5), /blog/one 2, /docs 2, /blog/two 1
    assert paged == {
        "results": [{"page": "/docs", "visitors": 2}, {"page": "/blog/two", "visitors": 1}]
    }
    # Countries: every visit here has none, and v1 leaves those rows out.
    assert pl.ok("/api/v1/stats/breakdown", **custom, property="visit:country") == {"results": []}
    browsers = pl.ok("/api/v1/stats/breakdown", **custom, property="visit:browser_version")
    # a version breakdown names the browser too: Chrome U1, U4, U5; Safari U2 (twice)
    assert browsers == {
        "results": [
            {"browser": "Chrome", "browser_version": "130.0", "visitors": 3},
            {"browser": "Safari", "browser_version": "17.4", "visitors": 2},
            {"browser": "Firefox", "browser_version": "121.0", "visitors": 1},
        ]
    }
    devices = pl.ok("/api/v1/stats/breakdown", **custom, property="visit:device")
    # Plausible's labels: Mobile is U2's iPhone on both days
    assert devices == {
        "results": [{"device": "Desktop", "visitors": 4}, {"device": "Mobile", "visitors": 2}]
    }


def test_realtime_visitors_is_a_bare_number_of_the_last_five_minutes(pl: Plausible) -> None:
    live = pl.world.live
    site_id = pl.world.site("live.example", pl.owner)
    svc = live.services
    svc.clock = lambda: datetime.now(UTC)
    try:
        for ip in ("10.9.0.1", "10.9.0.2"):
            sent = httpx.post(
                f"{pl.url}/api/event",
                json={"name": "pageview", "url": "https://live.example/", "domain": "live.example"},
                headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip},
                timeout=30,
            )
            assert sent.status_code in (202, 204), sent.text
        live.wait_rows("SELECT 1 FROM events WHERE site_id = ?", [site_id], 2)
        response = pl.get("/api/v1/stats/realtime/visitors", site_id="live.example")
        assert response.status_code == 200
        assert response.json() == 2
    finally:
        svc.clock = lambda: NOW


# --- every example of Plausible's Stats API v1 docs (plausible/docs docs/stats-api-v1.md) --


def test_docs_examples_answer_in_the_documented_shapes(pl: Plausible) -> None:
    six = {"site_id": SHOP, "period": "6mo"}  # 2020-08-01 .. 2021-01-31 at NOW
    aggregate = pl.ok("/api/v1/stats/aggregate", **six, metrics=",".join(DAY1))
    assert aggregate == {
        "results": {
            "visitors": {"value": 6},
            "pageviews": {"value": 9},
            "bounce_rate": {"value": 50},
            "visit_duration": {"value": 180},
            "visits": {"value": 6},
        }
    }
    months = ["2020-08-01", "2020-09-01", "2020-10-01", "2020-11-01", "2020-12-01"]
    series = pl.ok("/api/v1/stats/timeseries", **six)
    assert series == {
        "results": [{"date": m, "visitors": 0} for m in months]
        + [{"date": "2021-01-01", "visitors": 6}]
    }
    sources = pl.ok(
        "/api/v1/stats/breakdown",
        **six,
        property="visit:source",
        metrics="visitors,bounce_rate",
        limit=5,
    )
    assert sources["results"][0] == {"source": "Direct / None", "visitors": 3, "bounce_rate": 67}
    pages = pl.ok("/api/v1/stats/breakdown", **six, property="event:page", limit=5)
    assert pages == {
        "results": [
            {"page": "/", "visitors": 4},
            {"page": "/blog/one", "visitors": 2},
            {"page": "/docs", "visitors": 2},
            {"page": "/blog/two", "visitors": 1},
        ]
    }
    # "Number of visitors to a specific page", its URL-encoded filter as the docs write it
    headers = {"Authorization": f"Bearer {pl.token}"}
    encoded = f"{pl.url}/api/v1/stats/aggregate?site_id={SHOP}&period=6mo&filters="
    confirmation = httpx.get(encoded + "event:page%3D%3D%2Forder%2Fconfirmation", headers=headers)
    assert confirmation.json() == {"results": {"visitors": {"value": 0}}}
    docs_page = httpx.get(encoded + "event:page%3D%3D%2Fdocs", headers=headers)
    assert docs_page.json() == {"results": {"visitors": {"value": 2}}}  # U3 d1, U2 d2
    # "Monthly traffic from Google"
    google = pl.ok("/api/v1/stats/timeseries", **six, filters="visit:source==Google")
    assert google == {
        "results": [{"date": m, "visitors": 0} for m in months]
        + [{"date": "2021-01-01", "visitors": 2}]
    }
    # "Breakdown custom event by custom properties" (a goal with no conversions yet, then ours)
    svc = pl.world.live.services
    add_goal(svc.meta, pl.site_id, "event", "Download", "Download")
    downloads = pl.ok(
        "/api/v1/stats/breakdown",
        **six,
        property="event:props:method",
        filters="event:goal==Download",
    )
    assert downloads == {"results": []}
    plans = pl.ok(
        "/api/v1/stats/breakdown", **six, property="event:props:plan", filters="event:goal==Signup"
    )
    assert plans == {"results": [{"plan": "free", "visitors": 1}, {"plan": "pro", "visitors": 1}]}


def test_docs_filter_operators(pl: Plausible) -> None:
    custom = {"site_id": SHOP, "period": "custom", "date": "2021-01-01,2021-01-05"}

    def visitors(filters: str) -> int:
        body = pl.ok("/api/v1/stats/aggregate", **custom, filters=filters)
        return int(body["results"]["visitors"]["value"])

    assert visitors("visit:source==Google|Twitter") == 3  # U1, U4; U3
    assert visitors("visit:source!=Google") == 4  # everyone but U1 and U4
    assert visitors("event:goal==Signup;visit:source==Google") == 1  # U1
    assert visitors("event:page==/blog/*") == 3
    # a page goal by "Visit /path", and goals listed with |
    assert visitors("event:goal==Visit /docs") == 2
    assert visitors("event:goal==Signup|Visit /docs") == 3  # U1 d1, U3 d1, U2 d2
    # a goal name with a wildcard is just a name: not configured, refused (as Plausible's
    # validate_filter refuses it, whatever the docs' limitations section says)
    assert pl.error(
        "/api/v1/stats/aggregate", 400, None, **custom, filters="event:goal==Visit /d*"
    ) == (
        "The pageview goal for the pathname `/d*` is not configured for this site. Find out"
        " how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals"
    )
    # an escaped pipe is a literal one: no page has it
    assert visitors("event:page==/a\\|b") == 0
    # a country that isn't two letters is dropped, as Plausible drops the filter
    assert visitors("visit:country==DEU") == 6
    assert visitors("visit:country==DE") == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"period": "day", "date": "2021-02-30"},
            "Error parsing `date` parameter: invalid_date. Please specify a valid date in"
            " ISO-8601 format.",
        ),
        (
            {"property": "event:page", "limit": "abc"},
            "Please provide limit as a number between 1 and 1000.",
        ),
        ({"property": "event:page", "page": "-1"}, "Please provide page as a positive number."),
        (
            {"metrics": ""},
            "The metric `` is not recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics",
        ),
        ({"period": "custom", "date": "2021-01-05,2021-01-01"}, None),
        ({"period": "custom", "date": "1900-01-01,2100-01-01"}, None),
        ({"interval": "week"}, None),
        (
            {"period": "month", "date": "9999-12-15"},
            "Invalid `date` parameter: dates must lie between 1900 and 9000",
        ),
        ({"period": "7d", "date": "0001-01-01"}, None),
        ({"period": "12mo", "date": "0001-03-01"}, None),
        ({"period": "custom", "date": "0001-01-01,0001-01-02"}, None),
        ({"period": "custom", "date": "9999-12-30,9999-12-31"}, None),
        ({"interval": "month", "period": "custom", "date": "8999-12-01,9000-12-31"}, None),
        ({"property": "event:page", "order_by": '[["nope","desc"]]'}, None),
        ({"filters": "event:page==/a(b*[", "property": "event:page"}, None),
        ({"filters": "===;;|;event:page==;==x", "property": "event:page"}, None),
    ],
)
def test_bad_input_answers_400_in_plausibles_shape(
    pl: Plausible, params: dict[str, str], message: str | None
) -> None:
    kind = (
        "breakdown"
        if "property" in params
        else "timeseries"
        if "interval" in params
        else "aggregate"
    )
    response = pl.get(f"/api/v1/stats/{kind}", site_id=SHOP, **params)
    assert response.status_code in (200, 400), response.text
    assert set(response.json()) == ({"error"} if response.status_code == 400 else {"results"})
    if message is not None:
        assert response.json() == {"error": message}


# --- errors: Plausible's statuses and words (its controller tests) ----------------------

PERIOD_DOCS = "https://plausible.io/docs/stats-api#time-periods"
PROPS_DOCS = "https://plausible.io/docs/stats-api#properties"


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        # aggregate_test.exs "param validation"
        (
            "aggregate",
            {"period": "month", "date": "2021-dkjbAS", "metrics": "pageviews"},
            "Error parsing `date` parameter: invalid_format. Please specify a valid date in"
            " ISO-8601 format.",
        ),
        (
            "aggregate",
            {"period": "aosuhsacp", "metrics": "pageviews"},
            "Error parsing `period` parameter: invalid period `aosuhsacp`. Please find"
            f" accepted values in our docs: {PERIOD_DOCS}",
        ),
        (
            "aggregate",
            {"period": "custom", "metrics": "pageviews"},
            f"The `date` parameter is required when using a custom period. See {PERIOD_DOCS}",
        ),
        (
            "aggregate",
            {"period": "custom", "date": "2020-131-2piaskj,s,a90uac", "metrics": "pageviews"},
            "Invalid format for `date` parameter. When using a custom period, please include"
            f" two ISO-8601 formatted dates joined by a comma. See {PERIOD_DOCS}",
        ),
        (
            "aggregate",
            {"period": "30d", "metrics": "pageviews,led_zeppelin"},
            "The metric `led_zeppelin` is not recognized. Find valid metrics from the"
            " documentation: https://plausible.io/docs/stats-api#metrics",
        ),
        (
            "aggregate",
            {"period": "30d", "metrics": "scroll_depth"},
            "The metric `scroll_depth` is not recognized. Find valid metrics from the"
            " documentation: https://plausible.io/docs/stats-api#metrics",
        ),
        (
            "aggregate",
            {"metrics": "pageviews,visit_duration", "filters": "event:name==some_value"},
            "Session metric `visit_duration` cannot be queried when using a filter on"
            " `event:name`.",
        ),
        (
            "aggregate",
            {"metrics": "pageviews,visit_duration", "filters": "event:props:plan==some_value"},
            "Session metric `visit_duration` cannot be queried when using a filter on"
            " `event:props:plan`.",
        ),
        (
            "aggregate",
            {"metrics": "conversion_rate"},
            "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal"
            " filter",
        ),
        (
            "aggregate",
            {"filters": "event:page==/something", "metrics": "views_per_visit"},
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        ),
        (
            "aggregate",
            {"metrics": "visitors,visitors"},
            "Metrics cannot be queried multiple times.",
        ),
        (
            "aggregate",
            {"metrics": "time_on_page"},
            "Metric `time_on_page` can only be queried in a page breakdown or with a page filter.",
        ),
        (
            "aggregate",
            {"metrics": "time_on_page", "filters": "event:page==/A;event:goal==Signup"},
            "Metric `time_on_page` cannot be queried when filtering by `event:goal`",
        ),
        (
            "aggregate",
            {"filters": "event:goal==Nope"},
            "The goal `Nope` is not configured for this site. Find out how to configure goals"
            " here: https://plausible.io/docs/stats-api#filtering-by-goals",
        ),
        (
            "aggregate",
            {"filters": "event:goal==Visit /nope"},
            "The pageview goal for the pathname `/nope` is not configured for this site. Find"
            " out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals",
        ),
        (
            "aggregate",
            {"filters": "visit:nope==1"},
            "Invalid filter property 'visit:nope'. Please provide a valid filter property:"
            f" {PROPS_DOCS}",
        ),
        # timeseries_test.exs
        (
            "timeseries",
            {"period": "12mo", "interval": "alskd"},
            "Error parsing `interval` parameter: invalid interval `alskd`. Valid intervals are"
            " `day`, `month`",
        ),
        # breakdown_test.exs "param validation"
        (
            "breakdown",
            {"property": "visit:source", "filters": "event:page==/A", "metrics": "time_on_page"},
            "Metric `time_on_page` is not supported in breakdown queries (except `event:page`"
            " breakdown)",
        ),
        (
            "breakdown",
            {},
            "The `property` parameter is required. Please provide at least one property to"
            " show a breakdown by.",
        ),
        (
            "breakdown",
            {"property": "badproperty"},
            "Invalid property 'badproperty'. Please provide a valid property for the breakdown"
            f" endpoint: {PROPS_DOCS}",
        ),
        (
            "breakdown",
            {"property": "event:props:"},
            "Invalid property 'event:props:'. Please provide a valid property for the breakdown"
            f" endpoint: {PROPS_DOCS}",
        ),
        (
            "breakdown",
            {"property": "event:name", "metrics": "visitors,bounce_rate"},
            "Session metric `bounce_rate` cannot be queried for breakdown by `event:name`.",
        ),
        (
            "breakdown",
            {"property": "event:page", "metrics": "visitors,views_per_visit"},
            "Metric `views_per_visit` is not supported in breakdown queries.",
        ),
        (
            "breakdown",
            {"property": "event:hostname"},
            "Property 'event:hostname' is currently not supported for breakdowns.  Please"
            f" provide a valid property for the breakdown endpoint: {PROPS_DOCS}",
        ),
        (
            "breakdown",
            {"property": "event:page", "limit": "1001"},
            "Please provide limit as a number between 1 and 1000.",
        ),
        (
            "breakdown",
            {"property": "event:page", "page": "0"},
            "Please provide page as a positive number.",
        ),
    ],
)
def test_v1_refusals_in_plausibles_words(
    pl: Plausible, path: str, params: dict[str, str], message: str
) -> None:
    assert pl.error(f"/api/v1/stats/{path}", 400, None, site_id=SHOP, **params) == message


def test_auth_refusals_as_plausibles_auth_test(pl: Plausible) -> None:
    """auth_test.exs: 401 without a key, 401 for a bad key or a site the key can't read,
    400 without site_id."""
    url = f"{pl.url}/api/v1/stats/aggregate"
    bare = httpx.get(url, params={"site_id": SHOP, "metrics": "pageviews"}, timeout=30)
    assert (bare.status_code, bare.json()) == (
        401,
        {"error": "Missing API key. Please use a valid Plausible API key as a Bearer Token."},
    )
    invalid = (
        "Invalid API key or site ID. Please make sure you're using a valid API key with access"
        " to the site you've requested."
    )
    assert pl.error("/api/v1/stats/aggregate", 401, token="Bad key", site_id=SHOP) == invalid
    assert pl.error("/api/v1/stats/aggregate", 401, site_id="some-site.com") == invalid
    assert pl.error("/api/v1/stats/aggregate", 401, site_id="other.example") == invalid
    assert pl.error("/api/v1/stats/aggregate", 401, token=pl.other_token, site_id=SHOP) == invalid
    assert pl.error("/api/v1/stats/aggregate", metrics="pageviews") == (
        "Missing site ID. Please provide the required site_id parameter with your request."
    )
    # a key without stats:read (a Sites API key) can't read stats either
    assert pl.error("/api/v1/stats/aggregate", 401, token=pl.sites_token, site_id=SHOP) == invalid


def test_root_v1_paths_still_answer_the_aizen_dialect(pl: Plausible) -> None:
    """/api/v1/stats/* at the root stays the seed dialect; only the base path is v1."""
    response = httpx.get(
        f"{pl.world.live.url}/api/v1/stats/aggregate",
        params={"site_id": pl.site_id, "period": "6mo"},
        headers={"Authorization": f"Bearer {pl.token}"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "results" not in response.json()


def test_v2_query_and_event_api_answer_under_the_base_path(pl: Plausible) -> None:
    body = {
        "site_id": SHOP,
        "metrics": ["visitors", "pageviews"],
        "date_range": ["2021-01-01", "2021-01-05"],
    }
    headers = {"Authorization": f"Bearer {pl.token}"}
    root = httpx.post(f"{pl.world.live.url}/api/v2/query", json=body, headers=headers, timeout=30)
    based = httpx.post(f"{pl.url}/api/v2/query", json=body, headers=headers, timeout=30)
    assert based.status_code == 200, based.text
    assert (
        based.json()["results"] == root.json()["results"] == [{"metrics": [6, 9], "dimensions": []}]
    )
    bad = httpx.post(f"{pl.url}/api/v2/query", json={"site_id": SHOP}, headers=headers, timeout=30)
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    event = httpx.post(f"{pl.url}/api/event", content=b"{", timeout=30)
    assert event.status_code in (202, 204, 400)


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("script.js", ""),
        ("script.hash.js", 'document.currentScript.setAttribute("data-hash","");'),
        ("script.outbound-links.js", ""),
        ("script.tagged-events.js", ""),
        ("script.file-downloads.js", ""),
        ("script.revenue.js", ""),
        ("script.hash.outbound-links.js", 'document.currentScript.setAttribute("data-hash","");'),
        (
            "script.file-downloads.hash.local.js",
            'document.currentScript.setAttribute("data-allow-local","");'
            'document.currentScript.setAttribute("data-hash","");',
        ),
    ],
)
def test_script_variants_map_to_tracker_attributes(
    pl: Plausible, name: str, attributes: str
) -> None:
    tracker = (Path(__file__).resolve().parents[1] / "static" / "script.js").read_bytes()
    response = httpx.get(f"{pl.url}/js/{name}", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.content == attributes.encode() + tracker
    etag = response.headers["etag"]
    again = httpx.get(f"{pl.url}/js/{name}", headers={"If-None-Match": etag, "Accept-Encoding": ""})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["script.manual.js", "script.exclusions.js", "script.nope.js"])
def test_script_variants_without_an_equivalent_are_refused(pl: Plausible, name: str) -> None:
    response = httpx.get(f"{pl.url}/js/{name}")
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_health_answers_under_the_base_path_for_uptime_monitors(pl: Plausible) -> None:
    root = httpx.get(f"{pl.world.live.url}/api/health", timeout=30)
    based = httpx.get(f"{pl.url}/api/health", timeout=30)
    assert based.status_code == root.status_code == 200
    assert based.json().keys() == root.json().keys()


def test_unmatched_paths_under_the_root_answer_plausibles_error_shape(pl: Plausible) -> None:
    response = pl.get("/api/v1/stats/nope")
    assert (response.status_code, response.json()) == (404, {"error": "Not Found"})


def test_a_plausible_snippet_whose_host_alone_changed_loads_its_variant(pl: Plausible) -> None:
    """/js/script.hash.js at the root too (/js/script.js is the root's own route)."""
    root = pl.world.live.url
    hashed = httpx.get(f"{root}/js/script.hash.js", headers={"Accept-Encoding": "identity"})
    assert hashed.status_code == 200
    assert hashed.content.startswith(b'document.currentScript.setAttribute("data-hash","");')
    assert httpx.get(f"{root}/js/script.js").status_code == 200


@pytest.mark.parametrize("base", ["/analytics/pa", ""])
def test_plausible_base_path_moves_or_turns_off_the_root(tmp_path: Path, base: str) -> None:
    live = start_live_server(auth_settings(tmp_path, plausible_base_path=base, run_jobs=False))
    try:
        if base:
            moved = httpx.get(f"{live.url}{base}/api/v1/stats/aggregate", params={"site_id": "a.b"})
            missing = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
            assert (moved.status_code, moved.json()) == (401, {"error": missing})
            assert httpx.get(f"{live.url}{base}/js/script.hash.js").status_code == 200
            query = httpx.post(f"{live.url}{base}/api/v2/query", json={})
            assert query.status_code == 400 and set(query.json()) == {"error"}
        default = httpx.get(f"{live.url}/plausible/api/v1/stats/aggregate")
        assert default.status_code == 404
        assert httpx.post(f"{live.url}/plausible/api/v2/query", json={}).status_code == 404
    finally:
        stop_live_server(live)


@pytest.mark.parametrize("base", ["plausible", "/", "/a b"])
def test_plausible_base_path_must_be_a_path(base: str) -> None:
    with pytest.raises(ValueError, match="plausible_base_path"):
        Settings(plausible_base_path=base)


def test_past_the_keys_limit_a_429_in_plausibles_shape(tmp_path: Path) -> None:
    """auth_test.exs "limits the rate of API requests": 429 and its message (our limit is
    per minute, and the message says so)."""
    live = start_live_server(auth_settings(tmp_path, limits={"key_per_minute": 2}, run_jobs=False))
    world = World(live)
    owner = world.user("owner@example.com")
    world.site(SHOP, owner)
    token = world.key(owner, None, ("stats:read",))
    try:
        url = f"{live.url}/plausible/api/v1/stats/aggregate"
        headers = {"Authorization": f"Bearer {token}"}
        answers = [httpx.get(url, params={"site_id": SHOP}, headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json() == {
            "error": "Too many API requests. Your API key is limited to 2 requests per minute."
        }
        assert int(answers[2].headers["retry-after"]) >= 1
    finally:
        stop_live_server(live)


def test_conversion_rate_per_bucket_and_per_group(pl: Plausible) -> None:
    """legacy/timeseries.ex and breakdown.ex ask group_conversion_rate: each bucket's or
    group's converted visitors over its own visitors."""
    custom = {"site_id": SHOP, "period": "custom", "date": "2021-01-01,2021-01-03"}
    series = pl.ok(
        "/api/v1/stats/timeseries",
        **custom,
        metrics="visitors,conversion_rate",
        filters="event:goal==Signup",
    )
    assert series == {
        "results": [
            {"date": "2021-01-01", "visitors": 1, "conversion_rate": 33.33},  # U1 of 3
            {"date": "2021-01-02", "visitors": 1, "conversion_rate": 50.0},  # U2 of 2
            {"date": "2021-01-03", "visitors": 0, "conversion_rate": 0.0},
        ]
    }
    sources = pl.ok(
        "/api/v1/stats/breakdown",
        **custom,
        property="visit:source",
        metrics="visitors,conversion_rate",
        filters="event:goal==Signup",
    )
    # Google: U1 converted of U1, U4; Direct / None: U2 (d2) of U2 d1, U2 d2 (U3 is Twitter).
    # (A tie: Plausible then orders by the stored value, "" first; ours keeps no value last.)
    # by a custom property, the question's rate: each row's converted visitors over all
    # 6 visitors of 01..05 without the goal filter (legacy/breakdown.ex keeps conversion_rate)
    plans = pl.ok(
        "/api/v1/stats/breakdown",
        site_id=SHOP,
        period="custom",
        date="2021-01-01,2021-01-05",
        property="event:props:plan",
        metrics="visitors,conversion_rate",
        filters="event:goal==Signup",
    )
    assert plans == {
        "results": [
            {"plan": "free", "visitors": 1, "conversion_rate": 16.67},
            {"plan": "pro", "visitors": 1, "conversion_rate": 16.67},
        ]
    }
    assert sorted(sources["results"], key=lambda r: r["source"]) == [
        {"source": "Direct / None", "visitors": 1, "conversion_rate": 50.0},
        {"source": "Google", "visitors": 1, "conversion_rate": 50.0},
    ]


def test_with_imported_adds_a_plausible_import_and_warns_when_it_cannot(tmp_path: Path) -> None:
    """with_imported=true reads the site's imported Plausible export (the fixture's numbers,
    by hand in tests/test_imports_plausible.py: 2024-01-01..02 visitors 15, visits 18,
    pageviews 38, bounce rate 6/18, duration 720/18 = 40 s; Google 11, direct 4); a filter
    on two properties can't use it: the native answer with Plausible's warning."""
    data = new_data_dir(tmp_path)
    imported = cli(
        data, "import", "plausible", str(FIXTURES / "plausible"), "--site", "example.com"
    )
    assert imported.returncode == 0, imported.stderr
    live = start_live_server(auth_settings(tmp_path, run_jobs=False))
    live.services.clock = lambda: datetime(2024, 1, 10, tzinfo=UTC)
    world = World(live)
    owner = world.user("owner@example.com")
    site = live.services.sites.by_domain("example.com")
    assert site is not None
    set_role(world.meta, site.id, owner.id, "owner")
    headers = {"Authorization": f"Bearer {world.key(owner, None, ('stats:read',))}"}
    jan = {"site_id": "example.com", "period": "custom", "date": "2024-01-01,2024-01-02"}

    def get(path: str, **params: str) -> Any:
        url = f"{live.url}/plausible/api/v1/stats/{path}"
        response = httpx.get(url, params={**jan, **params}, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    try:
        metrics = "visitors,visits,pageviews,bounce_rate,visit_duration"
        assert get("aggregate", metrics=metrics, with_imported="true") == {
            "results": {
                "visitors": {"value": 15},
                "visits": {"value": 18},
                "pageviews": {"value": 38},
                "bounce_rate": {"value": 33},
                "visit_duration": {"value": 40},
            }
        }
        assert get("aggregate", metrics="visitors") == {"results": {"visitors": {"value": 0}}}
        sources = get("breakdown", property="visit:source", with_imported="true")
        assert sources == {
            "results": [
                {"source": "Google", "visitors": 11},
                {"source": "Direct / None", "visitors": 4},
            ]
        }
        warned = get(
            "aggregate", filters="event:page==/;visit:source==Google", with_imported="true"
        )
        assert warned == {
            "results": {"visitors": {"value": 0}},
            "warning": "Imported stats are not included in the results because query parameters"
            " are not supported. For more information, see:"
            " https://plausible.io/docs/stats-api#filtering-imported-stats",
        }
    finally:
        stop_live_server(live)
