"""Plausible's Stats API v1 under the Plausible base path (`/plausible` by default):
GET {base}/api/v1/stats/aggregate | timeseries | breakdown | realtime/visitors, answered by
the engine through the v2 step (app/query/plausible_v1.py), errors as {"error": message}
with Plausible's statuses and words."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar import Request, get

from app.api.access import authenticate, has_credentials, services, site_access
from app.api.collect import NO_STORE

# _group_totals: the v2 surface's conversion-rate denominators (the same numbers as v2's).
from app.api.plausible_query import _group_totals as group_totals
from app.api.plausible_query import render
from app.api.stats import site_goals
from app.errors import Forbidden, InvalidRequest, NotFound, RateLimited, Unauthorized
from app.query.answer import run_query
from app.query.goals import Goals
from app.query.model import Query
from app.query.parse import check_raw_window, imports_reach_back
from app.query.periods import Period
from app.query.plausible import v2_query
from app.query.plausible_goals import GOAL_KEY, goal_questions, merge_goal_rows
from app.query.plausible_v1 import (
    INVALID_KEY,
    MISSING_KEY,
    MISSING_SITE,
    Kind,
    V1Question,
    aggregate_value,
    breakdown_key,
    change,
    parse_v1,
    series_value,
)
from app.query.realtime import current_visitors
from app.query.rollup import with_site_timezone
from app.query.run import Result
from app.services import Services
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]


def v1_site(request: AnyRequest, site_id: str | None) -> Site:
    """The site a v1 request reads, refused as Plausible's AuthorizePublicAPI plug refuses:
    401 without a key or with one that can't read the site (unknown site included), 400
    without site_id, 429 past the key's limit."""
    if not has_credentials(request):
        raise Unauthorized(MISSING_KEY)
    try:
        authenticate(request)
    except Unauthorized as exc:
        raise Unauthorized(INVALID_KEY) from exc
    except RateLimited as exc:
        svc = services(request)
        limit = svc.settings.limits.key_per_minute
        raise RateLimited(
            f"Too many API requests. Your API key is limited to {limit} requests per minute.",
            exc.retry_after,
        ) from exc
    if not site_id:
        raise InvalidRequest(MISSING_SITE)
    svc = services(request)
    site = svc.sites.by_domain(site_id) if "." in site_id else None
    site = site or svc.sites.by_id(site_id)
    if site is None:
        raise Unauthorized(INVALID_KEY)
    try:
        return site_access(request, site.id, "stats:read")[0]
    except (Forbidden, NotFound) as exc:
        raise Unauthorized(INVALID_KEY) from exc


def _params(request: AnyRequest) -> dict[str, str]:
    return {k: str(request.query_params.get(k)) for k in request.query_params}


async def _question(request: AnyRequest, kind: Kind) -> tuple[Services, Site, V1Question, Goals]:
    params = _params(request)
    site = v1_site(request, params.get("site_id"))
    svc = services(request)
    wanted = "event:goal" in params.get("filters", "") or params.get("property") == "event:goal"
    goals = site_goals(svc, site, wanted)
    zone = ZoneInfo(site.timezone)
    # Plausible's default anchor is the UTC date (Timex.to_date(DateTime.utc_now())).
    today = svc.clock().astimezone(UTC).date()
    question = parse_v1(kind, params, goals, zone, today)
    return svc, site, question, goals


async def _answer(
    svc: Services, site: Site, question: V1Question, goals: Goals, period: Period
) -> tuple[Query, Result]:
    """The v2 step's Query for the question over `period`, run by the engine (event:goal
    as a dimension: one question per goal, merged, as the v2 surface answers it)."""
    req = question.request
    q = v2_query(req, site.id, period, goals)
    today = svc.clock().astimezone(ZoneInfo(site.timezone)).date()
    by_goal = "event:goal" in req.dimensions
    questions = goal_questions(q, goals) if by_goal else []
    raw_days = svc.retention(site).raw_days
    for asked in (q, *(each for _, each in questions[:1])):
        rolled = None
        if imports_reach_back(asked, today, raw_days):
            rolled = await anyio.to_thread.run_sync(svc.events.rolled_days, site.id)
        check_raw_window(asked, today, raw_days, rolled)
    q = with_site_timezone(q, site.settled_day_zone)
    if not by_goal:
        return q, await run_query(svc.events, q)
    answers = [(name, await run_query(svc.events, each)) for name, each in goal_questions(q, goals)]
    result = merge_goal_rows(answers, q.order_by, q.limit, q.offset)
    dims = list(q.dimensions)
    dims.insert(req.dimensions.index("event:goal"), GOAL_KEY)
    return msgspec.structs.replace(q, dimensions=tuple(dims)), result


async def _render(svc: Services, question: V1Question, q: Query, result: Result) -> dict[str, Any]:
    """The v2 render ({"metrics": [...], "dimensions": [...]} rows, labelled), with the
    denominators the v2 surface asks for conversion rates (one more question each)."""
    req = question.request
    groups = None
    if "group_conversion_rate" in req.metrics:
        groups = await group_totals(svc, req, q)
    converting = None
    if "conversion_rate" in req.metrics and q.interval is None:
        converting = (await group_totals(svc, req, q, whole=True)).get((), 0)
    return render(req, q, result, groups=groups, converting=converting)


async def _rows(
    svc: Services, question: V1Question, q: Query, result: Result
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await _render(svc, question, q, result))["results"]
    return rows


def _warning(question: V1Question, result: Result) -> dict[str, str]:
    if question.request.include.imports and result.imports_skip_reason == "unsupported_query":
        return {
            "warning": "Imported stats are not included in the results because query"
            " parameters are not supported. For more information, see:"
            " https://plausible.io/docs/stats-api#filtering-imported-stats"
        }
    return {}


@get("/api/v1/stats/aggregate", cache_control=NO_STORE)
async def aggregate(request: AnyRequest) -> dict[str, Any]:
    """{"results": {metric: {"value": v}}}; with compare=previous_period also
    "comparison_value" and "change" (legacy/aggregate.ex)."""
    svc, site, question, goals = await _question(request, "aggregate")
    q, result = await _answer(svc, site, question, goals, question.period)
    asked = question.request.metrics
    values = (await _rows(svc, question, q, result))[0]["metrics"]
    current = {m: aggregate_value(m, v) for m, v in zip(asked, values, strict=True)}
    results: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    if question.compare is not None:
        pq, presult = await _answer(svc, site, question, goals, question.compare)
        before = (await _rows(svc, question, pq, presult))[0]["metrics"]
        previous = {m: aggregate_value(m, v) for m, v in zip(asked, before, strict=True)}
    for metric in question.metrics:
        entry: dict[str, Any] = {"value": current[metric]}
        if question.compare is not None:
            entry["comparison_value"] = previous[metric]
            entry["change"] = change(metric, previous[metric], current[metric])
        results[metric] = entry
    return {"results": results, **_warning(question, result)}


@get("/api/v1/stats/timeseries", cache_control=NO_STORE)
async def timeseries(request: AnyRequest) -> dict[str, Any]:
    """{"results": [{"date": label, metric: value}]}, every bucket of the period (empty
    ones filled as legacy/timeseries.ex fills them)."""
    svc, site, question, goals = await _question(request, "timeseries")
    q, result = await _answer(svc, site, question, goals, question.period)
    body = await _render(svc, question, q, result)
    asked = question.request.metrics
    found = {row["dimensions"][0]: row["metrics"] for row in body["results"]}
    series = []
    for label in body["meta"].get("time_labels", []):
        values = found.get(label, [None] * len(asked))
        row: dict[str, Any] = {"date": label}
        row.update((m, series_value(m, v)) for m, v in zip(asked, values, strict=True))
        series.append(row)
    return {"results": series, **_warning(question, result)}


@get("/api/v1/stats/breakdown", cache_control=NO_STORE)
async def breakdown(request: AnyRequest) -> dict[str, Any]:
    """{"results": [{property_key: value, metric: value}]} (legacy/breakdown.ex)."""
    svc, site, question, goals = await _question(request, "breakdown")
    q, result = await _answer(svc, site, question, goals, question.period)
    keys = [breakdown_key(d) for d in question.request.dimensions]
    rows = []
    for item in await _rows(svc, question, q, result):
        row: dict[str, Any] = dict(zip(keys, item["dimensions"], strict=True))
        for metric, value in zip(question.keys, item["metrics"], strict=True):
            if metric is not None:
                row[metric] = series_value(metric, value)
        rows.append(row)
    return {"results": rows, **_warning(question, result)}


@get("/api/v1/stats/realtime/visitors", cache_control=NO_STORE)
async def realtime_visitors(request: AnyRequest) -> int:
    """The visitors of the last 5 minutes, a bare number (Plausible.Stats.current_visitors)."""
    site = v1_site(request, request.query_params.get("site_id"))
    svc = services(request)
    return await anyio.to_thread.run_sync(current_visitors, svc.events, site.id, 5, svc.clock())


ROUTES = [aggregate, timeseries, breakdown, realtime_visitors]
