"""Native stats API. For now only realtime, to make ingestion observable from outside."""

from __future__ import annotations

import ipaddress
from typing import Any

import anyio.to_thread
from litestar import Request, get
from litestar.params import FromQuery

from app.api.client import client_ip
from app.api.collect import NO_STORE, services
from app.errors import InvalidRequest, NotFound, Unauthorized
from app.query.realtime import current_visitors

AnyRequest = Request[Any, Any, Any]


def _require_reader(request: AnyRequest) -> None:
    """Until API keys exist, stats are open only to loopback, and only when configured."""
    svc = services(request)
    if svc.settings.open_stats_on_loopback:
        ip = client_ip(request, svc.trusted_proxies)
        try:
            if ipaddress.ip_address(ip).is_loopback:
                return
        except ValueError:
            pass
    raise Unauthorized("an API key is required")


@get("/api/v1/stats/realtime", cache_control=NO_STORE)
async def realtime(
    request: AnyRequest,
    site_id: FromQuery[str | None] = None,
    minutes: FromQuery[str | None] = None,
) -> dict[str, int]:
    """Visitors in the last `minutes` (default 10, clamped to 1..60)."""
    _require_reader(request)
    if not site_id:
        raise InvalidRequest("Missing required parameter: site_id")
    try:
        window = 10 if minutes is None else int(minutes)
    except ValueError as exc:
        raise InvalidRequest("minutes must be an integer") from exc
    window = min(max(window, 1), 60)
    svc = services(request)
    site = svc.sites.by_id(site_id)
    if site is None:
        raise NotFound("site not found")
    n = await anyio.to_thread.run_sync(current_visitors, svc.events, site.id, window)
    return {"current_visitors": n, "window_minutes": window}


ROUTES = [realtime]
