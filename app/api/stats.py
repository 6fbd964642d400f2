"""Native stats API. For now only realtime, to make ingestion observable from outside."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, get
from litestar.params import FromQuery

from app.api.access import services, stats_site
from app.api.collect import NO_STORE
from app.errors import InvalidRequest
from app.query.realtime import current_visitors

AnyRequest = Request[Any, Any, Any]


@get("/api/v1/stats/realtime", cache_control=NO_STORE)
async def realtime(
    request: AnyRequest,
    site_id: FromQuery[str | None] = None,
    minutes: FromQuery[str | None] = None,
) -> dict[str, int]:
    """Visitors in the last `minutes` (default 10, clamped to 1..60)."""
    site = stats_site(request, site_id)
    try:
        window = 10 if minutes is None else int(minutes)
    except ValueError as exc:
        raise InvalidRequest("minutes must be an integer") from exc
    window = min(max(window, 1), 60)
    svc = services(request)
    n = await anyio.to_thread.run_sync(current_visitors, svc.events, site.id, window)
    return {"current_visitors": n, "window_minutes": window}


ROUTES = [realtime]
