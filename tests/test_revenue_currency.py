"""Revenue per currency, never summed across currencies: the native breakdown by
`property=currency` (and the `currency` filter) over events posted through /api/event, with
sums counted by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.accounts_fixtures import World, world_fixture  # noqa: F401
from tests.conftest import CHROME_UA

# (visitor's IP, event name, amount, currency): all today, seven visitors.
EVENTS: list[tuple[str, str, str | None, str | None]] = [
    ("10.1.0.1", "Purchase", "100.00", "EUR"),
    ("10.1.0.1", "Purchase", "20.00", "EUR"),  # same visitor: EUR 120.00 from one visitor
    ("10.1.0.2", "Purchase", "30.25", "USD"),
    ("10.1.0.3", "Purchase", "9.75", "usd"),  # stored upper-case: USD 40.00 from two
    ("10.1.0.4", "Donation", "5.50", "GBP"),
    ("10.1.0.5", "Signup", None, None),
    ("10.1.0.6", "pageview", None, None),
]
# By hand from EVENTS.
PURCHASE = [
    {"value": "EUR", "revenue": 120.0, "events": 2, "visitors": 1},
    {"value": "USD", "revenue": 40.0, "events": 2, "visitors": 2},
]
EVERY_EVENT = [
    {"value": "EUR", "revenue": 120.0, "events": 2, "visitors": 1},
    {"value": "USD", "revenue": 40.0, "events": 2, "visitors": 2},
    {"value": "GBP", "revenue": 5.5, "events": 1, "visitors": 1},
    {"value": None, "revenue": 0.0, "events": 2, "visitors": 2},  # Signup + the pageview
]


class Stats:
    def __init__(self, world: World, site_id: str, token: str) -> None:
        self.world, self.site_id = world, site_id
        self.http = world.bearer(token)

    def get(self, endpoint: str, **params: str) -> httpx.Response:
        return self.http.get(
            f"/api/v1/stats/{endpoint}", params={"site_id": self.site_id, **params}
        )

    def ok(self, endpoint: str, **params: str) -> dict[str, Any]:
        answer = self.get(endpoint, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def stats(world: World) -> Iterator[Stats]:
    owner = world.user("owner@example.com")
    site_id = world.site("shop.test", owner)
    collect = world.client()
    for ip, name, amount, currency in EVENTS:
        body: dict[str, Any] = {
            "name": name,
            "url": "https://shop.test/checkout",
            "domain": "shop.test",
        }
        if amount is not None:
            body["revenue"] = {"amount": amount, "currency": currency}
        answer = collect.post(
            "/api/event", json=body, headers={"X-Forwarded-For": ip, "User-Agent": CHROME_UA}
        )
        assert answer.status_code == 202, answer.text
    yield Stats(world, site_id, world.key(owner, site_id))


def test_breakdown_by_currency_sums_each_currency_alone_when_asked(stats: Stats) -> None:
    body = stats.ok(
        "breakdown", property="currency", metrics="revenue,events,visitors", period="7d"
    )
    assert body["results"] == EVERY_EVENT
    assert body["pagination"]["total_rows"] == 4
    assert body["meta"]["from_rollups"] is False


def test_breakdown_by_currency_of_one_goal_when_filtered_by_event(stats: Stats) -> None:
    body = stats.ok(
        "breakdown",
        property="currency",
        metrics="revenue,events,visitors",
        period="7d",
        event="Purchase",
    )
    assert body["results"] == PURCHASE


def test_currency_filter_keeps_that_currency_when_given(stats: Stats) -> None:
    body = stats.ok("aggregate", metrics="revenue,events,visitors", period="7d", currency="USD")
    assert body["metrics"] == {"revenue": 40.0, "events": 2, "visitors": 2}
    body = stats.ok(
        "breakdown", property="event", metrics="revenue,events", period="7d", currency="EUR|GBP"
    )
    assert body["results"] == [
        {"value": "Purchase", "revenue": 120.0, "events": 2},
        {"value": "Donation", "revenue": 5.5, "events": 1},
    ]


def test_currency_breakdown_refused_outside_the_raw_window(stats: Stats) -> None:
    # Rollups hold no currency rows: a year reaches past the 90-day raw window.
    answer = stats.get("breakdown", property="currency", metrics="revenue", period="12m")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == {
        "code": "unsupported_query",
        "message": "property=currency is only answered inside the 90-day raw event window",
    }


def test_custom_property_breakdown_refused_outside_the_raw_window(stats: Stats) -> None:
    """Rollups hold no custom property's values either: a year of prop:<key> rows would be
    the raw days' alone (it answered 200 with them, while currency answered 422)."""
    answer = stats.get("breakdown", property="prop:plan", metrics="events", period="12m")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == {
        "code": "unsupported_query",
        "message": "property=prop:plan is only answered inside the 90-day raw event window",
    }
    assert stats.get("breakdown", property="prop:plan", period="7d").status_code == 200


def test_v2_has_no_currency_dimension_as_plausible(stats: Stats) -> None:
    answer = stats.http.post(
        "/api/v2/query",
        json={
            "site_id": "shop.test",
            "metrics": ["total_revenue"],
            "date_range": "7d",
            "dimensions": ["visit:currency"],
        },
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == '#/dimensions/0: Invalid dimension "visit:currency"'
