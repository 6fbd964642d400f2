"""The settings UI's routes (under /ui, plus /) and its template engine."""

from __future__ import annotations

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.ui import (
    pages_account,
    pages_dashboard,
    pages_data,
    pages_funnels,
    pages_imports,
    pages_keys,
    pages_members,
    pages_reports,
    pages_share,
    pages_sharing,
    pages_sites,
)
from app.ui.web import STATIC, TEMPLATES

FAVICON = STATIC / "favicon.svg"


@get(["/favicon.ico", "/favicon.svg"])
async def favicon() -> Response[bytes]:
    """The icon browsers ask for at /favicon.ico on any page (the pages link the SVG)."""
    return Response(
        FAVICON.read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def ui_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            *pages_account.ROUTES,
            *pages_dashboard.ROUTES,
            *pages_sites.ROUTES,
            *pages_data.ROUTES,
            *pages_funnels.ROUTES,
            *pages_imports.ROUTES,
            *pages_members.ROUTES,
            *pages_reports.ROUTES,
            *pages_keys.ROUTES,
            *pages_sharing.ROUTES,
            *pages_share.ROUTES,
            favicon,
            # The dashboard's build: hashed names or ?v=<hash> (app/ui/dashboard.py).
            create_static_files_router(
                path="/ui/static/dashboard",
                directories=[STATIC / "dashboard"],
                name="ui-static-dashboard",
                cache_control=CacheControlHeader(public=True, max_age=31_536_000, immutable=True),
            ),
            create_static_files_router(path="/ui/static", directories=[STATIC], name="ui-static"),
        ],
        include_in_schema=False,
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
