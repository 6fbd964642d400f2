"""What the dialect routers share: a request's site and period, and the caller's sites.

Queries run through the native stats path (app.api.stats.run): the same raw-window rule and
the same rollups, so a dialect can't answer differently from the native API."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request

from app.api.access import authenticate, require_scope, services, site_access, stats_site
from app.api.sites import visible_site_ids
from app.api.stats import Ctx
from app.auth.principal import Principal
from app.errors import InvalidRequest
from app.query.parse import comparison_of, parse_period
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]


def context(request: AnyRequest, site_id: str | None, params: dict[str, str]) -> Ctx:
    """Auth first (401/403/404 before any parameter error), then the period of `params`
    (native names: period, from, to, timezone, compare)."""
    site = stats_site(request, site_id)
    svc = services(request)
    period = parse_period(params, site.timezone, svc.clock(), None)
    return Ctx(svc, site, params, period, comparison_of(params, period))


def _listing_scope(principal: Principal) -> str:
    """Listing sites is part of reading stats in these APIs: either scope will do."""
    return "stats:read" if principal.has_scope("stats:read") else "sites:read"


async def listed_sites(request: AnyRequest) -> list[Site]:
    """The sites the caller can read, in the order the native /api/v1/sites lists them."""
    principal = authenticate(request)
    require_scope(principal, _listing_scope(principal))
    svc = services(request)
    ids = await anyio.to_thread.run_sync(visible_site_ids, svc, principal)
    return [s for s in map(svc.sites.by_id, ids) if s is not None]


def listed_site(request: AnyRequest, site_id: str) -> Site:
    """One site the caller could list (404 when it can't see it)."""
    principal = authenticate(request)
    return site_access(request, site_id, _listing_scope(principal))[0]


def bounded_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an integer") from exc
    if not low <= number <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return number
