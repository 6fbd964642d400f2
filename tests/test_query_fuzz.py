"""Random questions from the whole grammar of the native stats API and Plausible's v2 (seeded,
so a failure replays): none may answer 5xx, and every refusal is the surface's error
envelope. Such questions found three 500s (several values on a custom property, a
conversion rate by exit page, a pattern RE2 refuses) that the hand-written tests and
schemathesis (which can't see `prop:*` parameters or v2's filter grammar) missed."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from app.query.parse import FILTER_PARAMS
from app.query.plausible import EVENT_DIMS, METRICS, OPS, TIME_DIMS, VISIT_DIMS
from tests.stats_env import Env

QUESTIONS = 120  # per surface and seed: ~8 s each on the development machine
SEEDS = [1, 2]

VALUES = [
    "/", "/blog/*", "BLOG", "pro", "free", "Signup", "GB", "https://github.com/*", "*", "**",
    "", "^/d", "(", "a|b", "pro|fr*", "x'y", "%", "_", "\\", "ü", "o$",
]  # fmt: skip
NATIVE_METRICS = [
    "visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration",
    "events", "revenue", "time_on_page", "scroll_depth", "conversion_rate",
]  # fmt: skip
PROPERTIES = [*FILTER_PARAMS, "prop:plan", "prop:url", "prop:nope"]
ZONES = ["UTC", "Asia/Kathmandu", "America/New_York"]
# Names the zone database answers with an OSError or ValueError, not "not found": a
# directory, a name too long for a file, a file that is no zone, a NUL byte.
BAD_ZONES = ["America", "a" * 300, "zone.tab", "UTC\x00"]
V2_DIMENSIONS = [*EVENT_DIMS, *VISIT_DIMS, "event:props:plan", "event:props:url"]


def native_question(rng: random.Random, site_id: str) -> tuple[str, dict[str, str]]:
    endpoint = rng.choice(["aggregate", "timeseries", "breakdown", "breakdown"])
    params = {
        "site_id": site_id,
        "metrics": ",".join(rng.sample(NATIVE_METRICS, rng.randint(1, 4))),
        "period": rng.choice(
            ["today", "yesterday", "24h", "7d", "30d", "90d", "12m", "mtd", "ytd", "all", "custom"]
        ),
    }
    if params["period"] == "custom":
        params["from"], params["to"] = "2026-02-01", rng.choice(["2026-03-10", "2026-02-01"])
    for _ in range(rng.randint(0, 3)):
        params[rng.choice([*PROPERTIES, "goal"])] = rng.choice(VALUES)
    if endpoint == "breakdown":
        params["property"] = rng.choice(PROPERTIES)
    if rng.random() < 0.3:
        params["sort"] = rng.choice(NATIVE_METRICS) + rng.choice([".asc", ".desc"])
    if rng.random() < 0.3:
        params["limit"], params["page_number"] = str(rng.randint(1, 5)), str(rng.randint(1, 4))
    if endpoint == "timeseries" and rng.random() < 0.5:
        params["interval"] = rng.choice(["hour", "day", "week", "month"])
    if endpoint != "breakdown" and rng.random() < 0.3:
        params["compare"] = rng.choice(["previous_period", "year_over_year"])
    if rng.random() < 0.3:
        params["timezone"] = rng.choice([*ZONES, *BAD_ZONES])
    return endpoint, params


def v2_filter(rng: random.Random, depth: int = 0) -> list[Any]:
    if depth == 0 and rng.random() < 0.03:
        return deep_filter(rng.choice([11, 500]))  # past the depth limit: a 400
    roll = rng.random()
    if depth < 2 and roll < 0.2:
        clauses = [v2_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        return [rng.choice(["and", "or"]), clauses]
    if depth < 2 and roll < 0.3:
        return ["not", v2_filter(rng, depth + 1)]
    leaf: list[Any] = [
        rng.choice(OPS),
        # event:goal is a top-level filter naming configured goals (else Plausible's 400):
        # v2_question adds one.
        rng.choice(V2_DIMENSIONS),
        [rng.choice(VALUES) for _ in range(rng.randint(1, 3))],
    ]
    if rng.random() < 0.3:
        leaf.append({"case_sensitive": rng.random() < 0.5})
    return leaf


_BOUND = ("conversion_rate", "time_on_page", "scroll_depth", "views_per_visit")


def v2_question(rng: random.Random, domain: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": domain,
        # Metrics with conditions of their own (Plausible's parser refuses them elsewhere)
        # are added below with what they need, so most questions reach the engine.
        "metrics": rng.sample([m for m in METRICS if m not in _BOUND], rng.randint(1, 4)),
        "date_range": rng.choice(
            [
                "7d",
                "30d",
                "day",
                "24h",
                "all",
                "12mo",
                ["2026-03-01", "2026-03-10"],
                ["2026-03-10T10:00:00Z", "2026-03-12T09:59:59+01:00"],
            ]
        ),
        "dimensions": rng.sample([*V2_DIMENSIONS, *TIME_DIMS], rng.randint(0, 2)),
        "filters": [v2_filter(rng) for _ in range(rng.randint(0, 3))],
    }
    if rng.random() < 0.3:
        body["metrics"].append("conversion_rate")
        body["filters"].append(["is", "event:goal", ["Signup"]])
    if rng.random() < 0.2:
        body["metrics"].append(rng.choice(["time_on_page", "scroll_depth"]))
        body["filters"].append(page_is(rng.randint(1, 3)))
    if rng.random() < 0.3:
        body["order_by"] = [[rng.choice(body["metrics"]), rng.choice(["asc", "desc"])]]
    if rng.random() < 0.3:
        timed = any(d.startswith("time") for d in body["dimensions"])
        body["include"] = {"total_rows": True, "time_labels": timed and rng.random() < 0.5}
    if rng.random() < 0.2:
        offset = rng.choice([0, 1, 3, 10**9, 10**9 + 1, 2**63 - 1, 2**63, 2**64])
        body["pagination"] = {"limit": rng.randint(1, 5), "offset": offset}
    return body


def page_is(n: int) -> list[Any]:
    return ["is", "event:page", [f"/{n}"]]


def deep_filter(levels: int) -> list[Any]:
    """A "not" nested `levels` deep around one leaf (each level nests the SQL once more)."""
    tree: list[Any] = ["is", "event:page", ["/"]]
    for _ in range(levels - 1):
        tree = ["not", tree]
    return tree


@pytest.mark.parametrize("seed", SEEDS)
def test_native_questions_never_answer_5xx(env: Env, seed: int) -> None:
    rng = random.Random(seed)
    answered = 0
    for _ in range(QUESTIONS):
        endpoint, params = native_question(rng, env.ids[rng.choice(list(env.ids))])
        response = env.get(endpoint, **params)
        assert response.status_code in (200, 400, 422), (endpoint, params, response.text)
        if response.status_code == 200:
            answered += 1
        else:
            assert set(response.json()["error"]) == {"code", "message"}, response.text
    assert answered > QUESTIONS // 3  # the grammar mostly makes questions, not refusals


@pytest.mark.parametrize("seed", SEEDS)
def test_v2_questions_never_answer_5xx(env: Env, seed: int) -> None:
    from app.storage.goals import add_goal, goals_of

    for site in env.ids.values():  # the goal v2_question's goal filters name
        if not any(g.name == "Signup" for g in goals_of(env.live.services.meta, site)):
            add_goal(env.live.services.meta, site, "event", "Signup", "Signup")
    rng = random.Random(seed)
    answered = 0
    for _ in range(QUESTIONS):
        body = v2_question(rng, rng.choice(list(env.ids)))
        response = httpx.post(f"{env.live.url}/api/v2/query", json=body, timeout=30)
        assert response.status_code in (200, 400, 422), (body, response.text)
        if response.status_code == 200:
            answered += 1
        else:
            assert isinstance(response.json()["error"], str), response.text
    assert answered > QUESTIONS // 3


OFFSETS = "Invalid pagination: limit must be 1..10000, offset 0..1000000000"
V2 = {"metrics": ["visitors"], "date_range": "7d"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**V2, "filters": [deep_filter(500)]}, "Invalid filters: nested deeper than 10 levels"),
        ({**V2, "filters": [deep_filter(11)]}, "Invalid filters: nested deeper than 10 levels"),
        ({**V2, "dimensions": ["event:page"], "pagination": {"offset": 2**63}}, OFFSETS),
        ({**V2, "dimensions": ["event:page"], "pagination": {"offset": 2**64}}, OFFSETS),
        ({**V2, "filters": [[[[[[["is"]]]]]]]}, '#/filters/0: Invalid filter [[[[[["is"]]]]]]'),
        # 2,000 and-ed conditions cost DuckDB ~20 s of CPU to plan.
        (
            {**V2, "filters": [page_is(n) for n in range(101)]},
            "Invalid filters: more than 100 conditions",
        ),
        (
            {**V2, "filters": [["or", [page_is(n) for n in range(2000)]]]},
            "Invalid filters: more than 100 conditions",
        ),
    ],
)
def test_v2_shapes_that_answered_500_are_400(env: Env, body: dict[str, Any], error: str) -> None:
    body = {**body, "site_id": "utc.example"}
    response = httpx.post(f"{env.live.url}/api/v2/query", json=body, timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": error})


@pytest.mark.parametrize(
    "filters",
    [
        [deep_filter(10)],
        [page_is(n) for n in range(100)],
        [["or", [page_is(n) for n in range(100)]]],
    ],
)
def test_v2_ten_filter_levels_and_a_hundred_conditions_are_answered(
    env: Env, filters: list[Any]
) -> None:
    body = {**V2, "site_id": "utc.example", "filters": filters}
    response = httpx.post(f"{env.live.url}/api/v2/query", json=body, timeout=30)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"site_id":"utc.example","metrics":["visitors\xff"],"date_range":"7d"}',
        b'{"site_id":"utc.example","metrics":["visitors"],"date_range":"7d","filters":'
        + b"[" * 1200
        + b"]" * 1200
        + b"}",
    ],
)
def test_v2_bodies_that_are_no_json_are_400(env: Env, body: bytes) -> None:
    response = httpx.post(f"{env.live.url}/api/v2/query", content=body, timeout=30)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Invalid request body: not valid JSON"},
    )


@pytest.mark.parametrize("zone", BAD_ZONES)
def test_native_timezones_that_are_no_zone_are_400(env: Env, zone: str) -> None:
    shown = zone if len(zone) <= 64 else f"{zone[:64]}..."
    for endpoint in ("aggregate", "timeseries", "breakdown"):
        response = env.get(endpoint, site_id=env.ids["utc.example"], timezone=zone, property="page")
        assert (response.status_code, response.json()) == (
            400,
            {"error": {"code": "invalid_request", "message": f"unknown timezone: {shown!r}"}},
        )
