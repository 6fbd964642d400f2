"""Native stats API (/api/v1/stats/*): parse into a Query, run it, render the Aizen shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar import Request, get
from litestar.params import FromQuery, QueryParameter

from app.api.access import services, stats_site
from app.api.collect import NO_STORE
from app.api.share_access import stats_grant
from app.errors import InvalidRequest
from app.query.answer import run_query
from app.query.goals import Goals
from app.query.model import FilterTree, Query
from app.query.parse import (
    aggregate_query,
    breakdown_query,
    check_raw_window,
    comparison_of,
    imports_reach_back,
    parse_period,
    timeseries_query,
)
from app.query.periods import Period
from app.query.realtime import current_visitors, realtime_query
from app.query.render import change, metrics_of
from app.query.rollup import with_site_timezone
from app.query.run import Result, bot_hits, bucket_label, first_event_day
from app.services import Services
from app.storage.goals import goals_of
from app.storage.meta import Site
from app.storage.retention import retained_from

AnyRequest = Request[Any, Any, Any]
Q = FromQuery[str | None]
From = Annotated[str | None, QueryParameter(name="from", required=False)]
To = Annotated[str | None, QueryParameter(name="to", required=False)]


@dataclass
class Ctx:
    svc: Services
    site: Site
    params: dict[str, str]
    period: Period
    comparison: Period | None
    # A share link's fixed filter: added to every query run for this request.
    fixed: tuple[FilterTree, ...] = ()


def site_goals(svc: Services, site: Site, wanted: bool) -> Goals:
    """The site's goals by display name: a few SQLite rows, read only when a query names a
    goal (not on every stats request)."""
    return {g.name: (g.kind, g.value) for g in goals_of(svc.meta, site.id)} if wanted else {}


async def context(request: AnyRequest, site_id: str | None, *, shared: bool = False) -> Ctx:
    """Auth, then the parameters every stats endpoint shares. shared: a share link's token
    may read this endpoint (with its fixed filter)."""
    grant = stats_grant(request, site_id) if shared else None
    site = grant.site if grant else stats_site(request, site_id)
    svc = services(request)
    params: dict[str, str] = {k: str(request.query_params.get(k)) for k in request.query_params}
    first = None
    if params.get("period") == "all":
        first = await anyio.to_thread.run_sync(first_event_day, svc.events, site.id)
    period = parse_period(params, site.timezone, svc.clock(), first)
    fixed = grant.filters if grant else ()
    return Ctx(svc, site, params, period, comparison_of(params, period), fixed)


async def run(ctx: Ctx, q: Query, *, bots: bool = False) -> Result:
    """bots: the answer that meta() reports on also counts the bot hits of its days (in the
    same worker-thread hop and, on raw events, the same statement)."""
    if ctx.fixed:
        q = msgspec.structs.replace(q, filters=(*q.filters, *ctx.fixed))
    if with_imported(ctx.params):
        q = msgspec.structs.replace(q, include_imports=True)
    today = ctx.svc.clock().astimezone(ZoneInfo(q.period.timezone)).date()
    raw_days = ctx.svc.retention(ctx.site).raw_days
    rolled = None
    if imports_reach_back(q, today, raw_days):
        rolled = await anyio.to_thread.run_sync(ctx.svc.events.rolled_days, ctx.site.id)
    check_raw_window(q, today, raw_days, rolled)
    return await run_query(
        ctx.svc.events, with_site_timezone(q, ctx.site.settled_day_zone), bots=bots
    )


async def meta(ctx: Ctx, result: Result) -> dict[str, Any]:
    """Every response's meta; result should come from run(..., bots=True) over ctx.period."""
    bots = result.bot_hits
    if bots is None:
        q = Query(site_id=ctx.site.id, period=ctx.period, metrics=())
        bots = await anyio.to_thread.run_sync(bot_hits, ctx.svc.events, q)
    return {
        "timezone": ctx.period.timezone,
        "from_rollups": result.from_rollups,
        "sampled": False,
        "filtered_bot_traffic": bots,
        **expired_days(ctx.svc, ctx.site, ctx.period),
        **imports_meta(result),
    }


def with_imported(params: dict[str, str]) -> bool:
    """?with_imported=true: add the site's imported aggregates where they can answer."""
    value = params.get("with_imported", "false")
    if value not in ("true", "false"):
        raise InvalidRequest("with_imported: true or false")
    return value == "true"


def imports_meta(result: Result) -> dict[str, Any]:
    """imports_included (and imports_skip_reason when not) once imports were asked for."""
    if result.imports_included is None:
        return {}
    out: dict[str, Any] = {"imports_included": result.imports_included}
    if result.imports_skip_reason:
        out["imports_skip_reason"] = result.imports_skip_reason
    return out


def expired_days(svc: Services, site: Site, period: Period) -> dict[str, str]:
    """{"retained_from": day} when the period starts on a day past the site's retention
    (deleted by the prune job: those days answer zeros), else nothing."""
    today = svc.clock().astimezone(site.zone).date()
    first = retained_from(site, svc.settings, today)
    return {"retained_from": first.isoformat()} if first and period.first_day < first else {}


def period_of(period: Period) -> dict[str, str]:
    return {
        "from": period.first_day.isoformat(),
        "to": period.last_day.isoformat(),
        "preset": period.preset,
    }


@get("/api/v1/stats/aggregate")
async def aggregate(
    request: AnyRequest,
    site_id: Q = None,
    period: Q = None,
    date_from: From = None,
    date_to: To = None,
    timezone: Q = None,
    compare: Q = None,
    metrics: Q = None,
) -> dict[str, Any]:
    """Top-line metrics for the period (and the comparison period)."""
    ctx = await context(request, site_id, shared=True)
    q = aggregate_query(
        ctx.site.id, ctx.period, ctx.params, site_goals(ctx.svc, ctx.site, "goal" in ctx.params)
    )
    result = await run(ctx, q, bots=True)
    values = metrics_of(result.rows[0], q.metrics)
    body: dict[str, Any] = {"period": period_of(ctx.period), "metrics": values}
    if ctx.comparison is not None:
        other = await run(ctx, msgspec.structs.replace(q, period=ctx.comparison))
        previous = metrics_of(other.rows[0], q.metrics)
        body["comparison"] = {"period": period_of(ctx.comparison), "metrics": previous}
        body["change"] = {m: change(m, values[m], previous[m]) for m in q.metrics}
    body["meta"] = await meta(ctx, result)
    return body


def _points(q: Query, result: Result) -> list[dict[str, Any]]:
    zone = ZoneInfo(q.period.timezone)
    return [
        {"date": bucket_label(row["time"], zone), **metrics_of(row, q.metrics)}
        for row in result.rows
    ]


@get("/api/v1/stats/timeseries")
async def timeseries(
    request: AnyRequest,
    site_id: Q = None,
    period: Q = None,
    date_from: From = None,
    date_to: To = None,
    timezone: Q = None,
    compare: Q = None,
    metrics: Q = None,
    interval: Q = None,
) -> dict[str, Any]:
    """One point per bucket (UTC bucket starts), empty buckets as zeros."""
    ctx = await context(request, site_id, shared=True)
    q = timeseries_query(
        ctx.site.id, ctx.period, ctx.params, site_goals(ctx.svc, ctx.site, "goal" in ctx.params)
    )
    result = await run(ctx, q, bots=True)
    body: dict[str, Any] = {
        "period": period_of(ctx.period),
        "interval": q.interval,
        "results": _points(q, result),
    }
    if ctx.comparison is not None:
        other_q = msgspec.structs.replace(q, period=ctx.comparison)
        other = await run(ctx, other_q)
        body["comparison"] = {
            "period": period_of(ctx.comparison),
            "results": _points(other_q, other),
        }
    body["meta"] = await meta(ctx, result)
    return body


@get("/api/v1/stats/breakdown")
async def breakdown(
    request: AnyRequest,
    site_id: Q = None,
    period: Q = None,
    date_from: From = None,
    date_to: To = None,
    timezone: Q = None,
    metrics: Q = None,
    property: Q = None,
    sort: Q = None,
    limit: Q = None,
    page_number: Q = None,
) -> dict[str, Any]:
    """Rows per property value, sorted and paginated."""
    ctx = await context(request, site_id, shared=True)
    if ctx.comparison is not None:
        raise InvalidRequest("compare is supported on aggregate and timeseries")
    q = breakdown_query(
        ctx.site.id, ctx.period, ctx.params, site_goals(ctx.svc, ctx.site, "goal" in ctx.params)
    )
    result = await run(ctx, q, bots=True)
    prop = q.properties[0]
    size = q.limit or 1
    return {
        "property": prop,
        "period": period_of(ctx.period),
        "results": [{"value": row[prop], **metrics_of(row, q.metrics)} for row in result.rows],
        "pagination": {
            "page_number": q.offset // size + 1,
            "limit": size,
            "total_rows": result.total_rows,
            "total_pages": -(-result.total_rows // size),
        },
        "meta": await meta(ctx, result),
    }


@get("/api/v1/stats/realtime", cache_control=NO_STORE)
async def realtime(request: AnyRequest, site_id: Q = None, minutes: Q = None) -> dict[str, int]:
    """Visitors in the last `minutes` (default 10, clamped to 1..60)."""
    grant = stats_grant(request, site_id)
    site = grant.site
    try:
        window = 10 if minutes is None else int(minutes)
    except ValueError as exc:
        raise InvalidRequest("minutes must be an integer") from exc
    window = min(max(window, 1), 60)
    svc = services(request)
    if grant.filters:  # a share link's fixed filter: count only the visitors it shows
        q = realtime_query(site.id, grant.filters, window, svc.clock())
        n = int((await run_query(svc.events, q)).rows[0]["visitors"])
    else:
        n = await anyio.to_thread.run_sync(
            current_visitors, svc.events, site.id, window, svc.clock()
        )
    return {"current_visitors": n, "window_minutes": window}


INFINITY_METRICS = {
    "page_views": "pageviews",
    "unique_visitors": "visitors",
    "events": "custom_events",
}


@get("/api/v1/analytics")
async def infinity_analytics(
    request: AnyRequest,
    site_id: Q = None,
    start_date: Q = None,
    end_date: Q = None,
    metrics: Q = None,
) -> dict[str, Any]:
    """Infinity Metrics' shape: {"data": {page_views, unique_visitors, events}, "period"}."""
    wanted = [m.strip() for m in (metrics or ",".join(INFINITY_METRICS)).split(",") if m.strip()]
    unknown = [m for m in wanted if m not in INFINITY_METRICS]
    if unknown or not wanted:
        raise InvalidRequest(f"metrics must be among {', '.join(INFINITY_METRICS)}")
    ctx = await context(request, site_id)
    if start_date or end_date:
        params = {"period": "custom", "from": start_date or "", "to": end_date or ""}
        ctx.period = parse_period(params, ctx.site.timezone, ctx.svc.clock(), None)
    q = Query(
        site_id=ctx.site.id, period=ctx.period, metrics=tuple(INFINITY_METRICS[m] for m in wanted)
    )
    row = (await run(ctx, q)).rows[0]
    return {
        "data": {m: int(row[INFINITY_METRICS[m]]) for m in wanted},
        "period": {
            "start": ctx.period.first_day.isoformat(),
            "end": ctx.period.last_day.isoformat(),
        },
    }


ROUTES = [aggregate, timeseries, breakdown, realtime, infinity_analytics]
