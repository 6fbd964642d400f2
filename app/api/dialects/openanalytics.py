"""OpenAnalytics' query API (/v1/projects…): projects are our sites; pageviews and sessions
are an aggregate plus a daily series, or a breakdown with group_by. Errors come out as
{"error": code, "message": …} (app/errors.py), X-RateLimit-* from authentication."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from litestar import get
from litestar.params import FromPath, QueryParameter

from app.api.access import services
from app.api.collect import NO_STORE
from app.api.dialects.common import AnyRequest, bounded_int, context, listed_sites
from app.api.stats import Ctx, run
from app.errors import InvalidRequest
from app.query.model import Order, Query
from app.query.realtime import current_visitors
from app.query.render import metric_value
from app.storage.meta import Site

# OpenAnalytics group_by -> our property.
GROUP_BY = {
    "path": "page",
    "referrer": "referrer",
    "country": "country",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
# Our metric -> the field it is printed as, per endpoint (the first one sorts breakdowns).
PAGEVIEW_FIELDS = {"pageviews": "pageviews", "visitors": "visitors"}
SESSION_FIELDS = {
    "visits": "sessions",
    "bounce_rate": "bounce_rate",
    "visit_duration": "avg_duration_seconds",
}

_DATE = {"description": "YYYY-MM-DD in the project's time zone (with the other bound)"}
From = Annotated[str | None, QueryParameter(name="from", required=False, schema_extra=_DATE)]
To = Annotated[str | None, QueryParameter(name="to", required=False, schema_extra=_DATE)]
GroupBy = Annotated[
    str | None,
    QueryParameter(required=False, schema_extra={"enum": list(GROUP_BY)}),
]
Limit = Annotated[
    str | None,
    QueryParameter(required=False, schema_extra={"description": "rows, 1..1000 (default 100)"}),
]
Minutes = Annotated[
    str | None,
    QueryParameter(required=False, schema_extra={"description": "window, 1..60 (default 5)"}),
]


def project(site: Site) -> dict[str, str]:
    return {
        "id": site.id,
        "name": site.name,
        "domain": site.domain,
        "timezone": site.timezone,
        "created_at": site.created_at,
    }


@get("/v1/projects")
async def list_projects(request: AnyRequest) -> dict[str, Any]:
    """The caller's sites, as projects."""
    return {"projects": [project(s) for s in await listed_sites(request)]}


def _fields(row: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {name: metric_value(metric, row[metric]) for metric, name in fields.items()}


async def _totals(ctx: Ctx, fields: dict[str, str]) -> dict[str, Any]:
    """Totals and a daily series (local dates) over the period."""
    metrics = tuple(fields)
    total = await run(ctx, Query(site_id=ctx.site.id, period=ctx.period, metrics=metrics))
    series_q = Query(
        site_id=ctx.site.id,
        period=ctx.period,
        metrics=metrics,
        dimensions=("time:day",),
        order_by=(Order("time", False),),
    )
    series = await run(ctx, series_q)
    return {
        **_fields(total.rows[0], fields),
        "series": [
            {"date": row["time"].date().isoformat(), **_fields(row, fields)} for row in series.rows
        ],
    }


async def _grouped(ctx: Ctx, fields: dict[str, str], group_by: str, limit: int) -> dict[str, Any]:
    """One row per value of the group_by property, sorted by the first field, descending."""
    metrics = tuple(fields)
    prop = GROUP_BY[group_by]
    q = Query(
        site_id=ctx.site.id,
        period=ctx.period,
        metrics=metrics,
        dimensions=(prop,),
        order_by=(Order(metrics[0], True),),
        limit=limit,
    )
    result = await run(ctx, q)
    return {
        "group_by": group_by,
        "results": [{group_by: row[prop], **_fields(row, fields)} for row in result.rows],
        "total_rows": result.total_rows,
    }


async def _report(
    request: AnyRequest,
    project_id: str,
    date_from: str | None,
    date_to: str | None,
    group_by: str | None,
    limit: str | None,
    fields: dict[str, str],
) -> dict[str, Any]:
    params = {k: v for k, v in (("from", date_from), ("to", date_to)) if v}
    ctx = context(request, project_id, params)
    if group_by is not None and group_by not in GROUP_BY:
        raise InvalidRequest(f"group_by must be one of {', '.join(GROUP_BY)}")
    head = {
        "project_id": ctx.site.id,
        "from": ctx.period.first_day.isoformat(),
        "to": ctx.period.last_day.isoformat(),
        "timezone": ctx.period.timezone,
    }
    if group_by is None:
        return {**head, **await _totals(ctx, fields)}
    rows = bounded_int(limit, "limit", 100, 1, 1000)
    return {**head, **await _grouped(ctx, fields, group_by, rows)}


@get("/v1/projects/{project_id:str}/pageviews")
async def pageviews(
    request: AnyRequest,
    project_id: FromPath[str],
    date_from: From = None,
    date_to: To = None,
    group_by: GroupBy = None,
    limit: Limit = None,
) -> dict[str, Any]:
    """Pageviews and visitors: totals + daily series, or per group_by value."""
    return await _report(request, project_id, date_from, date_to, group_by, limit, PAGEVIEW_FIELDS)


@get("/v1/projects/{project_id:str}/sessions")
async def sessions(
    request: AnyRequest,
    project_id: FromPath[str],
    date_from: From = None,
    date_to: To = None,
    group_by: GroupBy = None,
    limit: Limit = None,
) -> dict[str, Any]:
    """Sessions (visits), bounce rate and average duration, the same way."""
    return await _report(request, project_id, date_from, date_to, group_by, limit, SESSION_FIELDS)


@get("/v1/projects/{project_id:str}/realtime", cache_control=NO_STORE)
async def realtime(
    request: AnyRequest, project_id: FromPath[str], minutes: Minutes = None
) -> dict[str, Any]:
    """Visitors active in the last few minutes (default 5)."""
    ctx = context(request, project_id, {})
    window = bounded_int(minutes, "minutes", 5, 1, 60)
    svc = services(request)
    n = await anyio.to_thread.run_sync(
        current_visitors, svc.events, ctx.site.id, window, svc.clock()
    )
    return {"project_id": ctx.site.id, "active_visitors": n, "window_minutes": window}


ROUTES = [list_projects, pageviews, sessions, realtime]
