"""Plausible's Stats API v2: POST /api/v2/query, answered by the same engine."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar import Request, post

from app.api.access import services
from app.api.share_access import stats_grant
from app.api.stats import expired_days, site_goals
from app.query.answer import run_query
from app.query.goals import Goals
from app.query.model import FilterTree, Query
from app.query.parse import check_raw_window, imports_reach_back
from app.query.plausible import (
    METRICS,
    V2Request,
    comparison_period,
    date_range,
    decode_v2,
    dimension,
    time_label,
    v2_query,
)
from app.query.plausible_check import check_query
from app.query.plausible_compare import compare_rows
from app.query.plausible_goals import GOAL_KEY, goal_questions, merge_goal_rows
from app.query.plausible_labels import label, labelled_filter
from app.query.plausible_money import (
    REVENUE_METRICS,
    RevenueCurrencies,
    metric_warnings,
    money,
    revenue_currencies,
)
from app.query.render import metric_value
from app.query.rollup import with_site_timezone
from app.query.run import Result, bucket_starts, first_event_day
from app.services import Services
from app.storage.goals import goals_of
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]


@post("/api/v2/query", status_code=200)
async def query_v2(request: AnyRequest) -> dict[str, Any]:
    """A Plausible v2 query: results as {"metrics": [...], "dimensions": [...]} rows."""
    req = decode_v2(await request.body())
    svc = services(request)
    # Plausible names sites by domain; our ids work too.
    by_domain = svc.sites.by_domain(req.site_id) if "." in req.site_id else None
    grant = stats_grant(request, by_domain.id if by_domain else req.site_id)
    site = grant.site
    zone = ZoneInfo(site.timezone)
    revenue_asked = any(m in REVENUE_METRICS for m in req.metrics)
    goals = site_goals(
        svc,
        site,
        "event:goal" in str(req.filters) or "event:goal" in req.dimensions or revenue_asked,
    )
    check_query(msgspec.to_builtins(req), set(goals))  # Plausible's refusals, its words
    first = None
    if req.date_range == "all":
        first = await anyio.to_thread.run_sync(first_event_day, svc.events, site.id)
    now = svc.clock()
    period = date_range(req.date_range, zone, now, first)
    q = v2_query(req, site.id, period, goals)
    if grant.filters:  # a share link's fixed filter, which the body can't take away
        q = msgspec.structs.replace(q, filters=(*q.filters, *grant.filters))
    revenue = None
    if revenue_asked:
        currencies = {g.name: g.currency for g in goals_of(svc.meta, site.id)}
        revenue = revenue_currencies(req.metrics, req.filters, req.dimensions, currencies)
    if revenue is not None and revenue.default is not None:
        q = msgspec.structs.replace(
            q,
            revenue_currency=revenue.default,
            revenue_events=_revenue_events(goals, currencies, revenue.default),
        )
    questions = goal_questions(q, goals)[:1] if "event:goal" in req.dimensions else []
    for question in (q, *(question for _, question in questions)):  # a goal's is filtered
        await _check_raw_window(svc, site, question, now.astimezone(zone).date())
    q = with_site_timezone(q, site.settled_day_zone)
    compared = req.include.comparisons is not None
    # A comparison's time series lists every bucket (Plausible's add_empty_timeseries_rows).
    all_buckets = compared and len(q.dimensions) == 1 and q.interval is not None
    result, body = await _answer(svc, req, q, goals, revenue, all_buckets=all_buckets)
    if req.include.comparisons is not None:
        other = comparison_period(req.include.comparisons, period, zone, now)
        cq = msgspec.structs.replace(q, period=other, limit=None, offset=0)
        await _check_raw_window(svc, site, cq, now.astimezone(zone).date())
        scope = _comparison_scope(req, body["results"])
        _, against = await _answer(svc, req, cq, goals, revenue, all_buckets=True, scope=scope)
        body["results"] = compare_rows(req, q, cq, body["results"], against["results"])
        body["query"]["include"]["comparisons"] = req.include.comparisons
    warnings = metric_warnings(req.metrics, revenue)
    if warnings:
        body["meta"]["metric_warnings"] = warnings
    body["meta"].update(
        timezone=q.period.timezone,
        from_rollups=result.from_rollups,
        sampled=False,
        filtered_bot_traffic=result.bot_hits,
        **expired_days(svc, site, period),
        **imports_meta(result),
    )
    return body


async def _check_raw_window(svc: Services, site: Site, q: Query, today: date) -> None:
    raw_days = svc.retention(site).raw_days
    rolled = None
    if imports_reach_back(q, today, raw_days):
        rolled = await anyio.to_thread.run_sync(svc.events.rolled_days, site.id)
    check_raw_window(q, today, raw_days, rolled)


async def _answer(
    svc: Services,
    req: V2Request,
    q: Query,
    goals: Goals,
    revenue: RevenueCurrencies | None,
    *,
    all_buckets: bool = False,
    scope: FilterTree | None = None,
) -> tuple[Result, dict[str, Any]]:
    """The question's rows in v2's shape, with the further questions its metrics need.
    scope: a filter on the rows only (not on the totals percentage and the conversion
    rates divide by), as Plausible's comparison filters (ignore_in_totals_query)."""
    if "event:goal" in req.dimensions:
        by_goal = revenue.by_goal if revenue is not None else {}
        result = await _by_goal(svc, q, goals, by_goal)
        q = msgspec.structs.replace(q, dimensions=_with_goal(req, q))
    else:
        rows_q = q if scope is None else msgspec.structs.replace(q, filters=(*q.filters, scope))
        result = await run_query(svc.events, rows_q, bots=True)
    total = None
    if "percentage" in req.metrics:  # the visitors of the question without its dimensions
        whole = msgspec.structs.replace(
            q, dimensions=(), metrics=("visitors",), order_by=(), limit=None, offset=0
        )
        total = int((await run_query(svc.events, whole)).rows[0]["visitors"])
    groups = None
    if "group_conversion_rate" in req.metrics:
        groups = await _group_totals(svc, req, q)
    converting = None
    if "conversion_rate" in req.metrics and q.interval is None:
        totals = await _group_totals(svc, req, q, whole=True)
        converting = totals.get((), 0)
    body = render(req, q, result, total, revenue, groups, converting, all_buckets=all_buckets)
    return result, body


def _comparison_scope(req: V2Request, rows: list[dict[str, Any]]) -> FilterTree | None:
    """The compared period's rows limited to the values the question's rows have, as
    Plausible's Comparisons.add_comparison_filters, where that changes no row's numbers:
    one visit:* dimension besides time (a visit's value is the same on all its events), as
    one IN list (several dimensions' or-ed pairs would cost more to plan than they save),
    every value a label a filter can name."""
    kept = [
        (i, d) for i, d in enumerate(req.dimensions) if not (d == "time" or d.startswith("time:"))
    ]
    if len(kept) != 1 or not kept[0][1].startswith("visit:") or not rows:
        return None
    index, name = kept[0]
    values = [r["dimensions"][index] for r in rows]
    if not all(isinstance(v, str) and v for v in values):
        return None
    return labelled_filter("equals", dimension(name), tuple(dict.fromkeys(values)), True)


async def _by_goal(svc: Services, q: Query, goals: Goals, currencies: Mapping[str, str]) -> Result:
    """event:goal as a dimension: each configured goal's question, merged; a revenue goal's
    revenue in its own currency."""
    answers: list[tuple[str, Result]] = []
    for name, question in goal_questions(q, goals):
        if name in currencies:
            question = msgspec.structs.replace(
                question,
                revenue_currency=currencies[name],
                revenue_events=_revenue_events(goals, {name: currencies[name]}, currencies[name]),
            )
        answers.append((name, await run_query(svc.events, question, bots=not answers)))
    return merge_goal_rows(answers, q.order_by, q.limit, q.offset)


async def _group_totals(
    svc: Services, req: V2Request, q: Query, *, whole: bool = False
) -> dict[tuple[Any, ...], int]:
    """group_conversion_rate's denominators (special_metrics.ex
    maybe_add_group_conversion_rate): the visitors of each group of the question's
    dimensions without its top-level event:goal and event:props filters. whole: without
    the dimensions too, conversion_rate's one denominator (maybe_add_conversion_rate)."""
    kept = tuple(
        f
        for i, f in enumerate(q.filters)
        if i >= len(req.filters) or not _goal_or_prop_filter(req.filters[i])
    )
    dims = () if whole else tuple(d for d in q.dimensions if d != GOAL_KEY)
    totals = msgspec.structs.replace(
        q,
        dimensions=dims,
        filters=kept,
        metrics=("visitors",),
        order_by=(),
        limit=None,
        offset=0,
        revenue_currency=None,
    )
    rows = (await run_query(svc.events, totals)).rows
    keys = ["time" if d.startswith("time:") else d for d in dims]
    return {tuple(row[k] for k in keys): int(row["visitors"]) for row in rows}


def _goal_or_prop_filter(raw: Any) -> bool:
    return (
        isinstance(raw, list)
        and len(raw) >= 3
        and isinstance(raw[1], str)
        and (raw[1] == "event:goal" or raw[1].startswith("event:props:"))
    )


def _revenue_events(
    goals: Goals, currencies: Mapping[str, str | None], currency: str
) -> tuple[str, ...]:
    """The event names of the goals in `currency`: Plausible keeps revenue only on events
    that match a revenue goal (page goals carry none)."""
    names = [
        goal[1]
        for g, c in currencies.items()
        if c == currency and (goal := goals.get(g, ("page", "")))[0] == "event"
    ]
    return tuple(dict.fromkeys(names)) or ("",)


def _with_goal(req: V2Request, q: Query) -> tuple[str, ...]:
    """q's dimensions with the goal's row key where event:goal was asked (for render)."""
    dims = list(q.dimensions)
    dims.insert(req.dimensions.index("event:goal"), GOAL_KEY)
    return tuple(dims)


# Plausible's warnings when imports were asked for but can't be added (its
# lib/plausible/stats/query_result.ex meta/2).
IMPORTS_WARNINGS = {
    "unsupported_query": "Imported stats are not included in the results because query"
    " parameters are not supported. For more information, see:"
    " https://plausible.io/docs/stats-api#filtering-imported-stats",
    "unsupported_interval": "Imported stats are not included because the time dimension"
    " (i.e. the interval) is too short.",
}


def imports_meta(result: Result) -> dict[str, Any]:
    """include.imports: imports_included, and imports_skip_reason + imports_warning when
    they are left out (as Plausible's meta says it)."""
    if result.imports_included is None:
        return {}
    meta: dict[str, Any] = {"imports_included": result.imports_included}
    reason = result.imports_skip_reason
    if reason:
        meta["imports_skip_reason"] = reason
    if reason in IMPORTS_WARNINGS:
        meta["imports_warning"] = IMPORTS_WARNINGS[reason]
    return meta


def render(
    req: V2Request,
    q: Query,
    result: Result,
    total: int | None = None,
    revenue: RevenueCurrencies | None = None,
    groups: Mapping[tuple[Any, ...], int] | None = None,
    converting: int | None = None,
    *,
    all_buckets: bool = False,
) -> dict[str, Any]:
    """Rows, meta (total_rows, time_labels when asked) and the query as understood. total:
    the visitors the percentage metric is a share of; revenue: the currencies revenue is
    in; groups: group_conversion_rate's visitors per group (of the dimensions but goals);
    converting: conversion_rate's visitors (None: the engine's rate, per time bucket)."""
    # Dimensions answer in the order asked ("time" is the time dimension's row key).
    keys = ["time" if d.startswith("time:") else d for d in q.dimensions]
    group_keys = [k for k in keys if k != GOAL_KEY]
    results = []
    for row in _ordered(result.rows, q):
        context = _RowContext(
            total,
            _currency(revenue, row),
            None if groups is None else groups.get(tuple(row[k] for k in group_keys)),
            converting,
        )
        values = [_value(m, row, context) for m in req.metrics]
        if q.interval and not any(values) and not all_buckets:
            continue  # v2 lists buckets with data; include.time_labels lists them all
        dims = [
            time_label(row[k], q.interval, q.period)
            if k == "time" and q.interval
            else label(k, row[k])
            for k in keys
        ]
        results.append({"metrics": values, "dimensions": dims})
    meta: dict[str, Any] = {}
    if req.include.total_rows:
        meta["total_rows"] = len(results) if q.interval else result.total_rows
    if req.include.time_labels and q.interval:
        meta["time_labels"] = [
            time_label(s, q.interval, q.period) for s in bucket_starts(q.period, q.interval)
        ]
    query = {
        "site_id": req.site_id,
        "metrics": req.metrics,
        "date_range": [q.period.start.isoformat() + "Z", q.period.end.isoformat() + "Z"],
        "dimensions": req.dimensions,
        "filters": req.filters,
        "order_by": req.order_by,
        "include": {"total_rows": req.include.total_rows, "time_labels": req.include.time_labels},
        "pagination": {"limit": req.pagination.limit, "offset": req.pagination.offset},
    }
    return {"results": results, "meta": meta, "query": query}


def _ordered(rows: list[dict[str, Any]], q: Query) -> list[dict[str, Any]]:
    """A time series in the question's order_by: the engine lists every bucket in time
    order (zero-filled), whatever the order asked; null values last, as the SQL orders."""
    if not q.interval or q.properties or not q.order_by:
        return rows
    ordered = list(rows)
    for order in reversed(q.order_by):
        key = order.key
        present = [r for r in ordered if r.get(key) is not None]
        present.sort(key=lambda r: r[key], reverse=order.descending)
        ordered = present + [r for r in ordered if r.get(key) is None]
    return ordered


class _RowContext(NamedTuple):
    total: int | None  # the question's visitors (percentage)
    currency: str | None  # the row's revenue currency (None: revenue metrics are null)
    group: int | None  # the row's group visitors (group_conversion_rate)
    converting: int | None  # the question's visitors without goals (conversion_rate)


def _currency(revenue: RevenueCurrencies | None, row: dict[str, Any]) -> str | None:
    """revenue.ex format_revenue_metric's currency: the question's one, or the row's goal's."""
    if revenue is None or revenue.warning is not None:
        return None
    return revenue.default or revenue.by_goal.get(row.get(GOAL_KEY, ""))


def _value(metric: str, row: dict[str, Any], context: _RowContext) -> Any:
    total = context.total
    if metric == "percentage":  # as Plausible: one decimal, null when there is no total
        return round(row["visitors"] / total * 100, 1) if total else None
    if metric in REVENUE_METRICS:
        value = row[METRICS[metric]]
        return money(value, context.currency) if context.currency else None
    if metric == "group_conversion_rate":  # if(total > 0, round(x / total * 100, 2), 0)
        group = context.group
        return round(row["visitors"] / group * 100, 2) if group else 0
    if metric == "conversion_rate" and context.converting is not None:
        whole = context.converting
        return round(row["visitors"] / whole * 100, 2) if whole else 0
    if metric == "bounce_rate":  # round(bounces / visits * 100): Plausible's Float64 steps
        visits = row.get("bounce_visits", row.get("visits"))
        if visits is None or "bounces" not in row:  # a question without the parts
            value = row["bounce_rate"]
            return None if value is None else round(float(value))
        return round(int(row["bounces"]) / int(visits) * 100) if visits else 0
    return metric_value(METRICS[metric], row[METRICS[metric]])


ROUTES = [query_v2]
