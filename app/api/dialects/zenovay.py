"""Zenovay's External API (/api/external/v1…): analytics overview and breakdowns, websites
and usage, in {"success": true, "data": …, "timestamp": …}. Errors come out as
{"success": false, "error": {message, code, timestamp}} (app/errors.py); rate-limit and
usage headers from authentication; X-Request-ID is echoed for every route."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import get
from litestar.params import FromPath, QueryParameter

from app.api.access import authenticate, services
from app.api.dialects.common import AnyRequest, bounded_int, context, listed_site, listed_sites
from app.api.stats import Ctx, run
from app.auth.limits import month_of, next_month_start
from app.errors import InvalidRequest
from app.query.model import Order, Query
from app.query.render import metric_value
from app.query.run import Result, bucket_label
from app.storage.keys import all_keys
from app.storage.meta import Site

RANGES = ("24h", "7d", "30d", "90d", "1y")  # native period presets of the same name
DEFAULT_RANGE = "7d"
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
# Our metric -> Zenovay's field.
SUMMARY = {
    "visitors": "unique_visitors",
    "visits": "total_visitors",
    "pageviews": "total_page_views",
    "bounce_rate": "bounce_rate",
    "visit_duration": "avg_session_duration",
}
PAGE_FIELDS = {"visitors": "unique_visitors", "pageviews": "page_views"}
TECHNOLOGY = {"browsers": "browser", "operating_systems": "os", "devices": "device"}

Range = Annotated[
    str | None,
    QueryParameter(
        name="range",
        required=False,
        schema_extra={"enum": list(RANGES), "description": "time window (default 7d)"},
    ),
]
Limit = Annotated[
    str | None,
    QueryParameter(
        required=False, schema_extra={"description": f"rows, 1..{MAX_LIMIT} (default 50)"}
    ),
]
Offset = Annotated[
    str | None, QueryParameter(required=False, schema_extra={"description": "rows to skip"})
]


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "timestamp": timestamp()}


def website(site: Site) -> dict[str, str]:
    return {
        "id": site.id,
        "domain": site.domain,
        "name": site.name,
        "timezone": site.timezone,
        "tracking_code": site.id,  # the public id the tracker sends (data-tracking-code)
        "created_at": site.created_at,
    }


class Page:
    """limit / offset of a request, and the pagination object of its answer."""

    def __init__(self, limit: str | None, offset: str | None) -> None:
        self.limit = bounded_int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        self.offset = bounded_int(offset, "offset", 0, 0, 1_000_000)

    def info(self, shown: int, total: int) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "offset": self.offset,
            "total": total,
            "has_more": self.offset + shown < total,
        }


def _context(request: AnyRequest, website_id: str, range_: str | None) -> Ctx:
    wanted = range_ or DEFAULT_RANGE
    # Auth first: the period parses only once the caller is known.
    ctx = context(request, website_id, {"period": wanted if wanted in RANGES else DEFAULT_RANGE})
    if wanted not in RANGES:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}")
    return ctx


def _fields(row: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {name: metric_value(metric, row[metric]) for metric, name in fields.items()}


def _head(ctx: Ctx) -> dict[str, Any]:
    return {
        "website": {"id": ctx.site.id, "domain": ctx.site.domain, "name": ctx.site.name},
        "time_range": ctx.period.preset,
        "date_range": {
            "start": ctx.period.first_day.isoformat(),
            "end": ctx.period.last_day.isoformat(),
        },
        "timezone": ctx.period.timezone,
    }


async def _total_visitors(ctx: Ctx) -> int:
    q = Query(site_id=ctx.site.id, period=ctx.period, metrics=("visitors",))
    return int((await run(ctx, q)).rows[0]["visitors"])


async def _daily(ctx: Ctx) -> list[dict[str, Any]]:
    """Summary fields per local day (per hour, labelled in UTC, for the rolling 24h)."""
    hourly = ctx.period.rolling
    q = Query(
        site_id=ctx.site.id,
        period=ctx.period,
        metrics=tuple(SUMMARY),
        dimensions=("time:hour" if hourly else "time:day",),
        order_by=(Order("time", False),),
    )
    zone = ZoneInfo(ctx.period.timezone)
    return [
        {
            "date": bucket_label(row["time"], zone) if hourly else row["time"].date().isoformat(),
            **_fields(row, SUMMARY),
        }
        for row in (await run(ctx, q)).rows
    ]


async def _breakdown(ctx: Ctx, prop: str, metrics: tuple[str, ...], page: Page) -> Result:
    q = Query(
        site_id=ctx.site.id,
        period=ctx.period,
        metrics=metrics,
        dimensions=(prop,),
        order_by=(Order(metrics[0], True),),
        limit=page.limit,
        offset=page.offset,
    )
    return await run(ctx, q)


def _share(visitors: int, total: int) -> float:
    return round(100 * visitors / total, 1) if total else 0.0


@get("/api/external/v1/analytics/{website_id:str}")
async def overview(
    request: AnyRequest, website_id: FromPath[str], range_: Range = None
) -> dict[str, Any]:
    """Website, summary over the range and its daily stats."""
    ctx = _context(request, website_id, range_)
    q = Query(site_id=ctx.site.id, period=ctx.period, metrics=tuple(SUMMARY))
    summary = _fields((await run(ctx, q)).rows[0], SUMMARY)
    return envelope({**_head(ctx), "summary": summary, "daily_stats": await _daily(ctx)})


@get("/api/external/v1/analytics/{website_id:str}/visitors")
async def visitors(
    request: AnyRequest,
    website_id: FromPath[str],
    range_: Range = None,
    limit: Limit = None,
    offset: Offset = None,
) -> dict[str, Any]:
    """Visitors per day (never per person: there are no visitor records), paged."""
    ctx = _context(request, website_id, range_)
    page = Page(limit, offset)
    days = await _daily(ctx)
    shown = days[page.offset : page.offset + page.limit]
    return envelope(
        {**_head(ctx), "visitors": shown, "pagination": page.info(len(shown), len(days))}
    )


@get("/api/external/v1/analytics/{website_id:str}/pages")
async def pages(
    request: AnyRequest,
    website_id: FromPath[str],
    range_: Range = None,
    limit: Limit = None,
    offset: Offset = None,
) -> dict[str, Any]:
    """Pages by unique visitors."""
    ctx = _context(request, website_id, range_)
    page = Page(limit, offset)
    result = await _breakdown(ctx, "page", tuple(PAGE_FIELDS), page)
    rows = [{"path": row["page"], **_fields(row, PAGE_FIELDS)} for row in result.rows]
    return envelope(
        {**_head(ctx), "pages": rows, "pagination": page.info(len(rows), result.total_rows)}
    )


@get("/api/external/v1/analytics/{website_id:str}/countries")
async def countries(
    request: AnyRequest,
    website_id: FromPath[str],
    range_: Range = None,
    limit: Limit = None,
    offset: Offset = None,
) -> dict[str, Any]:
    """Countries (ISO codes) by unique visitors, with their share of all visitors."""
    ctx = _context(request, website_id, range_)
    page = Page(limit, offset)
    result = await _breakdown(ctx, "country", tuple(PAGE_FIELDS), page)
    total = await _total_visitors(ctx)
    rows = [
        {
            "code": row["country"],
            **_fields(row, PAGE_FIELDS),
            "percentage": _share(row["visitors"], total),
        }
        for row in result.rows
    ]
    return envelope(
        {**_head(ctx), "countries": rows, "pagination": page.info(len(rows), result.total_rows)}
    )


@get("/api/external/v1/analytics/{website_id:str}/technology")
async def technology(
    request: AnyRequest,
    website_id: FromPath[str],
    range_: Range = None,
    limit: Limit = None,
    offset: Offset = None,
) -> dict[str, Any]:
    """Browsers, operating systems and devices; limit / offset apply to each list."""
    ctx = _context(request, website_id, range_)
    page = Page(limit, offset)
    total = await _total_visitors(ctx)
    data: dict[str, Any] = _head(ctx)
    totals: dict[str, int] = {}
    longest = (0, 0)  # (rows shown, total rows) of the longest list
    for name, prop in TECHNOLOGY.items():
        result = await _breakdown(ctx, prop, ("visitors",), page)
        data[name] = [
            {
                "name": row[prop],
                "unique_visitors": int(row["visitors"]),
                "percentage": _share(row["visitors"], total),
            }
            for row in result.rows
        ]
        totals[name] = result.total_rows
        longest = max(longest, (len(result.rows), result.total_rows), key=lambda s: s[1])
    data["pagination"] = {**page.info(*longest), "totals": totals}
    return envelope(data)


@get("/api/external/v1/websites")
async def list_websites(request: AnyRequest) -> dict[str, Any]:
    """The websites the key can read."""
    sites = [website(s) for s in await listed_sites(request)]
    return envelope({"websites": sites, "total": len(sites)})


@get("/api/external/v1/websites/{website_id:str}")
async def get_website(request: AnyRequest, website_id: FromPath[str]) -> dict[str, Any]:
    return envelope({"website": website(listed_site(request, website_id))})


@get("/api/external/v1/usage")
async def usage(request: AnyRequest) -> dict[str, Any]:
    """Requests this month: the calling key's own, or every key of a signed-in user."""
    principal = authenticate(request)
    svc = services(request)
    now = time.time()
    keys = (
        [principal.key]
        if principal.key
        else await anyio.to_thread.run_sync(all_keys, svc.meta, principal.user.id)
    )
    used = svc.auth.usage.used(principal.subject, now)
    limit = svc.auth.usage.limit or None
    return envelope(
        {
            "month": month_of(now),
            "requests": used,
            "limit": limit,
            "remaining": max(limit - used, 0) if limit else None,
            "reset": next_month_start(now),
            "keys": [
                {
                    "id": k.id,
                    "name": k.name,
                    "key_prefix": k.key_prefix,
                    "site_id": k.site_id,
                    "requests": svc.auth.usage.used(f"key:{k.id}", now),
                }
                for k in keys
            ],
        }
    )


ROUTES = [overview, visitors, pages, countries, technology, list_websites, get_website, usage]
