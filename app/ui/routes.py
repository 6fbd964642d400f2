"""The settings UI's routes (under /ui, plus /) and its template engine."""

from __future__ import annotations

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.ui import (
    pages_account,
    pages_dashboard,
    pages_keys,
    pages_members,
    pages_share,
    pages_sharing,
    pages_sites,
)
from app.ui.web import STATIC, TEMPLATES


def ui_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            *pages_account.ROUTES,
            *pages_dashboard.ROUTES,
            *pages_sites.ROUTES,
            *pages_members.ROUTES,
            *pages_keys.ROUTES,
            *pages_sharing.ROUTES,
            *pages_share.ROUTES,
            create_static_files_router(path="/ui/static", directories=[STATIC], name="ui-static"),
        ],
        include_in_schema=False,
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
