"""Pages: a site's dashboard (every member and every instance admin sees it)."""

from __future__ import annotations

import anyio.to_thread
from litestar import get
from litestar.params import FromPath
from litestar.response import Template

from app.query.run import first_event_day
from app.storage.funnels import funnels_of
from app.storage.goals import goals_of
from app.storage.segments import segments_of
from app.ui.dashboard import dashboard_context
from app.ui.pages_sites import base_url
from app.ui.web import AnyRequest, page, services, signed_in, viewer_site


@get("/ui/sites/{site_id:str}")
async def dashboard_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    """The dashboard: a shell whose scripts ask the stats API with the session cookie."""
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id)
    svc = services(request)
    goals = await anyio.to_thread.run_sync(goals_of, svc.meta, site.id)
    funnels = await anyio.to_thread.run_sync(funnels_of, svc.meta, site.id)
    segments = await anyio.to_thread.run_sync(segments_of, svc.meta, site.id)
    first = await anyio.to_thread.run_sync(first_event_day, svc.events, site.id)
    span = await anyio.to_thread.run_sync(svc.events.imported_span, site.id)
    context = dashboard_context(
        site,
        embed=False,
        share=False,
        api_token=None,
        goals=goals,
        empty=first is None and span is None,
        base=base_url(request),
        imported=span is not None,
        funnels=funnels,
        segments=segments,
    )
    return page(request, "dashboard.html", viewer, role=role, **context)


ROUTES = [dashboard_page]
