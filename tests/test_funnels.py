"""Funnels (SPEC §7) on both events stores: defined through the sites API from a site's
goals, counted by /api/v1/stats/funnel over hand-placed events whose answer is worked out
below, and refused clearly (too few steps, unknown goals, a taken name, filters, a period
past the raw window). Deleting a goal deletes the funnels it is a step of."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.storage.accounts import User
from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import CHROME_UA, LiveServer
from tests.stats_env import STORAGES

DAY = datetime.now(UTC).date() - timedelta(days=1)


def at(hour: int, minute: int = 0, second: int = 0) -> int:
    moment = datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


# Steps: 1 "Visit /" (a pageview of /), 2 the Signup event, 3 "Visit /thanks". Each
# visitor's events (an address of their own, so one visitor each on the day):
#   A  / 10:00, Signup 10:05, /thanks 10:06                  -> step 3
#   B  / 10:00, /thanks 10:01, Signup 10:02                  -> step 2 (no /thanks after)
#   C  Signup 09:00, / 10:00                                 -> step 1 (no Signup after /)
#   E  /about 10:00                                          -> never enters
#   F  / 11:00, / 11:30, Signup 11:31, /thanks 11:32         -> step 3
#   H  Signup 12:00                                          -> never enters
#   I  / 13:00:00, Signup 13:00:00 (the same instant)        -> step 1 (a step is later)
# All visitors 7; step 1: A B C F I = 5; step 2: A B F = 3; step 3: A F = 2.
EVENTS = {
    "A": [
        ("pageview", "/", at(10)),
        ("Signup", "/join", at(10, 5)),
        ("pageview", "/thanks", at(10, 6)),
    ],
    "B": [
        ("pageview", "/", at(10)),
        ("pageview", "/thanks", at(10, 1)),
        ("Signup", "/join", at(10, 2)),
    ],
    "C": [("Signup", "/join", at(9)), ("pageview", "/", at(10))],
    "E": [("pageview", "/about", at(10))],
    "F": [
        ("pageview", "/", at(11)),
        ("pageview", "/", at(11, 30)),
        ("Signup", "/join", at(11, 31)),
        ("pageview", "/thanks", at(11, 32)),
    ],
    "H": [("Signup", "/join", at(12))],
    "I": [("pageview", "/", at(13)), ("Signup", "/join", at(13))],
}
EXPECTED_STEPS = [
    {"name": "Visit /", "visitors": 5, "conversion_rate": 100.0, "conversion_rate_step": 100.0,
     "dropoff": 0, "dropoff_percentage": 0.0},
    {"name": "Signup", "visitors": 3, "conversion_rate": 60.0, "conversion_rate_step": 60.0,
     "dropoff": 2, "dropoff_percentage": 40.0},
    {"name": "Visit /thanks", "visitors": 2, "conversion_rate": 40.0,
     "conversion_rate_step": 66.67, "dropoff": 1, "dropoff_percentage": 33.33},
]  # fmt: skip


@pytest.fixture(params=STORAGES)
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, storage=request.param, run_jobs=False)) as found:
        yield found


def place_events(live: LiveServer, site_id: str) -> None:
    svc = live.services
    site = svc.sites.by_id(site_id)
    assert site is not None
    rows = []
    for n, (who, events) in enumerate(EVENTS.items()):
        for name, path, ts in events:
            hit = Hit(name=name, url=f"https://shop.test{path}", site_id=site_id)
            row = svc.ingest.build(hit, site, Client(f"203.0.113.{n + 1}", CHROME_UA), ts)
            assert not isinstance(row, Drop), (who, row)
            rows.append(row)
    svc.events.append(rows)


def make_goals(http: httpx.Client, site: str) -> list[str]:
    ids = []
    for body in ({"page_path": "/"}, {"event_name": "Signup"}, {"page_path": "/thanks"}):
        made = http.post(f"/api/v1/sites/{site}/goals", json=body)
        assert made.status_code == 201, made.text
        ids.append(made.json()["goal"]["id"])
    return ids


def test_a_funnel_counts_the_visitors_who_went_through_its_steps_in_order(world: World) -> None:
    owner: User = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    http = world.bearer(world.key(owner, site, scopes=("sites:read", "sites:write", "stats:read")))
    goals = make_goals(http, site)
    made = http.post(f"/api/v1/sites/{site}/funnels", json={"name": "Signup flow", "steps": goals})
    assert made.status_code == 201, made.text
    funnel = made.json()["funnel"]
    assert [s["name"] for s in funnel["steps"]] == ["Visit /", "Signup", "Visit /thanks"]
    place_events(world.live, site)
    day = DAY.isoformat()
    params = {
        "site_id": site,
        "funnel_id": funnel["id"],
        "period": "custom",
        "date_from": day,
        "date_to": day,
    }
    answer = http.get("/api/v1/stats/funnel", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["funnel"] == {"id": funnel["id"], "name": "Signup flow"}
    assert (body["all_visitors"], body["entering_visitors"], body["never_entering_visitors"]) == (
        7,
        5,
        2,
    )
    assert body["entering_visitors_percentage"] == 71.43
    assert body["never_entering_visitors_percentage"] == 28.57
    assert body["steps"] == EXPECTED_STEPS
    # Two steps of it: Signup after / (A, B, F), whatever came later.
    short = http.post(
        f"/api/v1/sites/{site}/funnels", json={"name": "Short", "steps": goals[:2]}
    ).json()["funnel"]
    two = http.get("/api/v1/stats/funnel", params={**params, "funnel_id": short["id"]}).json()
    assert [s["visitors"] for s in two["steps"]] == [5, 3]
    # The day before holds nothing.
    before = (DAY - timedelta(days=1)).isoformat()
    empty = http.get(
        "/api/v1/stats/funnel", params={**params, "date_from": before, "date_to": before}
    )
    assert [s["visitors"] for s in empty.json()["steps"]] == [0, 0, 0]
    assert empty.json()["all_visitors"] == 0


def test_funnels_refuse_what_they_cannot_answer_and_follow_their_goals(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    http = world.bearer(world.key(owner, site, scopes=("sites:read", "sites:write", "stats:read")))
    goals = make_goals(http, site)
    path = f"/api/v1/sites/{site}/funnels"

    def refused(body: dict[str, Any]) -> tuple[int, str]:
        answer = http.post(path, json=body)
        return answer.status_code, answer.json()["error"]["message"]

    assert refused({"name": "x", "steps": goals[:1]}) == (400, "steps: a funnel has 2 to 8 steps")
    assert refused({"name": "x", "steps": [goals[0], "nope"]}) == (
        400,
        "steps: no goal 'nope' on this site",
    )
    assert refused({"name": " ", "steps": goals}) == (
        400,
        "name: give the funnel a name (at most 120 characters)",
    )
    assert refused({"name": "x", "steps": [goals[0], goals[0]]}) == (
        400,
        "steps: the same goal twice in a row is one step",
    )
    assert http.post(path, json={"name": "Flow", "steps": goals}).status_code == 201
    assert refused({"name": "Flow", "steps": goals[:2]}) == (
        409,
        "name: the site has a funnel named 'Flow' already",
    )
    flow = http.get(path).json()["funnels"][0]
    stats = "/api/v1/stats/funnel"
    base = {"site_id": site, "funnel_id": flow["id"], "period": "7d"}
    assert http.get(stats, params=base).status_code == 200
    missing = http.get(stats, params={**base, "funnel_id": ""})
    assert (missing.status_code, missing.json()["error"]["message"]) == (
        400,
        "Missing required parameter: funnel_id",
    )
    filtered = http.get(stats, params={**base, "country": "DE"})
    assert filtered.status_code == 400
    assert (
        filtered.json()["error"]["message"]
        == "funnels are not filtered: drop the filters (or the share link's)"
    )
    old = http.get(stats, params={**base, "period": "12m"})
    assert (old.status_code, old.json()["error"]["message"]) == (
        422,
        "funnels are only answered inside the 90-day raw event window",
    )
    assert http.get(stats, params={**base, "funnel_id": "nope"}).status_code == 404
    # A reader can't define one; deleting a goal of the funnel deletes the funnel.
    reader = world.bearer(world.key(owner, site, scopes=("sites:read", "stats:read")))
    assert reader.post(path, json={"name": "R", "steps": goals[:2]}).status_code == 403
    assert http.delete(f"/api/v1/sites/{site}/goals/{goals[1]}").status_code == 200
    assert http.get(path).json() == {"funnels": []}
    assert http.get(stats, params=base).status_code == 404
