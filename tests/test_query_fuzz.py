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
        params["timezone"] = rng.choice(["UTC", "Asia/Kathmandu", "America/New_York"])
    return endpoint, params


def v2_filter(rng: random.Random, depth: int = 0) -> list[Any]:
    roll = rng.random()
    if depth < 2 and roll < 0.2:
        clauses = [v2_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        return [rng.choice(["and", "or"]), clauses]
    if depth < 2 and roll < 0.3:
        return ["not", v2_filter(rng, depth + 1)]
    leaf: list[Any] = [
        rng.choice(OPS),
        rng.choice([*V2_DIMENSIONS, "event:goal"]),
        [rng.choice(VALUES) for _ in range(rng.randint(1, 3))],
    ]
    if rng.random() < 0.3:
        leaf.append({"case_sensitive": rng.random() < 0.5})
    return leaf


def v2_question(rng: random.Random, domain: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": domain,
        "metrics": rng.sample([m for m in METRICS if m != "conversion_rate"], rng.randint(1, 4)),
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
    if rng.random() < 0.3:
        body["order_by"] = [[rng.choice(body["metrics"]), rng.choice(["asc", "desc"])]]
    if rng.random() < 0.3:
        body["include"] = {"total_rows": True, "time_labels": rng.random() < 0.5}
    if rng.random() < 0.2:
        body["pagination"] = {"limit": rng.randint(1, 5), "offset": rng.randint(0, 3)}
    return body


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
