"""Funnels: /api/v1/sites/{id}/funnels (define them: 2 to 8 of the site's goals, in
order) and /api/v1/stats/funnel (how many visitors went through one, step by step)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio.to_thread
import msgspec
from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from app.api.access import services, site_access
from app.api.stats import AnyRequest, From, Q, To, context, period_of
from app.errors import InvalidRequest, UnsupportedQuery
from app.query.funnel import funnel_answer
from app.query.parse import parse_filters
from app.storage.funnels import add_funnel, delete_funnel, funnel_of, funnels_of


class FunnelForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    steps: list[str]  # goal ids, in order


@get("/api/v1/sites/{site_id:str}/funnels")
async def list_funnels(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:read")
    found = await anyio.to_thread.run_sync(funnels_of, services(request).meta, site.id)
    return {"funnels": [f.public() for f in found]}


@post("/api/v1/sites/{site_id:str}/funnels", status_code=201)
async def create_funnel(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[FunnelForm]
) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    meta = services(request).meta
    funnel = await anyio.to_thread.run_sync(add_funnel, meta, site.id, data.name, data.steps)
    return {"funnel": funnel.public()}


@delete("/api/v1/sites/{site_id:str}/funnels/{funnel_id:str}", status_code=200)
async def remove_funnel(
    request: AnyRequest, site_id: FromPath[str], funnel_id: FromPath[str]
) -> dict[str, bool]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    await anyio.to_thread.run_sync(delete_funnel, services(request).meta, site.id, funnel_id)
    return {"ok": True}


@get("/api/v1/stats/funnel")
async def funnel_stats(
    request: AnyRequest,
    site_id: Q = None,
    funnel_id: Q = None,
    period: Q = None,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """Visitors at each step of a funnel over the period (raw events: inside the site's
    raw window). Filters don't apply to funnels."""
    ctx = await context(request, site_id, shared=True)
    if not funnel_id:
        raise InvalidRequest("Missing required parameter: funnel_id")
    if ctx.fixed or parse_filters(ctx.params, {}):
        raise InvalidRequest("funnels are not filtered: drop the filters (or the share link's)")
    svc = ctx.svc
    funnel = await anyio.to_thread.run_sync(funnel_of, svc.meta, ctx.site.id, funnel_id)
    raw_days = svc.retention(ctx.site).raw_days
    today = svc.clock().astimezone(ctx.site.zone).date()
    if ctx.period.first_day < today - timedelta(days=raw_days - 1):
        raise UnsupportedQuery(
            f"funnels are only answered inside the {raw_days}-day raw event window"
        )
    answer = await anyio.to_thread.run_sync(
        funnel_answer, svc.events, ctx.site.id, ctx.period, funnel
    )
    return {
        "funnel": {"id": funnel.id, "name": funnel.name},
        "period": period_of(ctx.period),
        **answer,
        "meta": {"timezone": ctx.period.timezone},
    }


ROUTES = [list_funnels, create_funnel, remove_funnel, funnel_stats]
