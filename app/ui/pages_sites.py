"""Pages: sites (list, add, edit, delete), install + verify, goals and members."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

import anyio.to_thread
import msgspec
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.api.client import is_https
from app.api.site_data import COUNT_DAYS, deletion_inventory, excluded_counts
from app.auth.twofactor import qr_svg
from app.ingest.diagnostics import DropCount
from app.query.recent import RecentEvent, recent_events
from app.storage.accounts import Role
from app.storage.funnels import funnels_of
from app.storage.goals import delete_goal, goals_of
from app.storage.meta import Site
from app.ui import actions
from app.ui.actions import attempt
from app.ui.web import (
    AnyRequest,
    Viewer,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_site,
)

EDITORS: tuple[Role, ...] = ("owner", "admin")


@cache
def timezones() -> list[str]:
    """IANA zone names for the picker (no legacy aliases such as 'posix/...')."""
    names = zoneinfo.available_timezones()
    return sorted(n for n in names if "/" in n and n.split("/")[0] not in {"posix", "right"})


def base_url(request: AnyRequest) -> str:
    """This server's URL for snippets and links: public_url when set (a page opened over
    another address, e.g. on the server itself, must still show the public one), else
    the URL as the browser sees it."""
    public = services(request).settings.public_url
    if public:
        return public.rstrip("/")
    scheme = "https" if is_https(request, services(request).trusted_proxies) else "http"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{scheme}://{host}"


@get("/ui/sites")
async def sites_page(request: AnyRequest) -> Template:
    viewer = await signed_in(request)
    found = await anyio.to_thread.run_sync(actions.visible_sites, services(request), viewer.user)
    return page(request, "sites.html", viewer, sites=found)


def _site_form(request: AnyRequest, viewer: Viewer, **context: Any) -> Template:
    site = context.get("site")
    if site is not None:
        context = {**opt_out_links(site), **context}
    return page(request, "site_form.html", viewer, timezones=timezones(), **context)


@get("/ui/sites/new")
async def new_site_page(request: AnyRequest) -> Template:
    return _site_form(request, await signed_in(request), site=None)


@post("/ui/sites/new")
async def add_site(request: AnyRequest) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, errors = await attempt("domain", actions.add_site, services(request), viewer.user, form)
    if site is None:
        return _site_form(request, viewer, site=None, errors=errors, values=form.values())
    return redirect(f"/ui/sites/{site.id}/install")


@get("/ui/sites/{site_id:str}/settings")
async def site_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id)
    values = {"domain": site.domain, "name": site.name, "timezone": site.timezone}
    done = request.query_params.get("done", "")
    return _site_form(request, viewer, site=site, role=role, values=values, done=done)


def opt_out_links(site: Site) -> dict[str, Any]:
    """Links for "exclude my own visits": to the site's own origin whose fragment makes the
    tracker store (or clear) the avocet_ignore flag there; localStorage is per origin, so the
    flag can only be set on the site's domain. Plus a QR code of the link for a phone."""
    exclude = f"https://{site.domain}/#avocet_ignore=true"
    return {
        "opt_out_url": exclude,
        "opt_in_url": f"https://{site.domain}/#avocet_ignore=false",
        "opt_out_qr": qr_svg(exclude),
    }


@post("/ui/sites/{site_id:str}/settings")
async def edit_site(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    updated, errors = await attempt("domain", actions.edit_site, services(request), site, form)
    if updated is None:
        return _site_form(
            request, viewer, site=site, role=role, errors=errors, values=form.values()
        )
    services(request).realign(updated)
    return redirect(f"/ui/sites/{site.id}/settings?done=saved")


@get("/ui/sites/{site_id:str}/delete")
async def delete_site_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, ("owner",))
    return await _delete_page(request, viewer, site, role)


async def _delete_page(
    request: AnyRequest, viewer: Viewer, site: Site, role: Role, **context: Any
) -> Template:
    """The confirmation, with exactly what goes (counted now)."""
    what = await anyio.to_thread.run_sync(deletion_inventory, services(request), site)
    return page(request, "site_delete.html", viewer, site=site, role=role, what=what, **context)


@post("/ui/sites/{site_id:str}/delete")
async def delete_site(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, ("owner",))
    rid, errors = await attempt(
        "confirm", actions.delete_site, services(request), site, viewer.user, form
    )
    if rid is None:
        return await _delete_page(request, viewer, site, role, errors=errors)
    request.app.state.privacy.submit(rid)
    return redirect("/ui/sites")


@get("/ui/sites/{site_id:str}/install")
async def install_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id)
    excluded = await anyio.to_thread.run_sync(excluded_counts, services(request), site)
    return page(
        request,
        "install.html",
        viewer,
        site=site,
        role=role,
        base=base_url(request),
        excluded=excluded,
        count_days=COUNT_DAYS,
    )


class Verification(msgspec.Struct, frozen=True):
    events: list[RecentEvent]
    dropped: list[DropCount]  # why this site's hits were dropped since the server started
    warnings: list[str]  # e.g. every visitor arriving as one proxy address
    # Hits the site's exclusion rules dropped over its last 30 days, per kind of rule
    # (counted at ingest and stored: they survive a restart, unlike `dropped`).
    excluded: dict[str, int]


@get("/ui/sites/{site_id:str}/recent")
async def recent(request: AnyRequest, site_id: FromPath[str]) -> Verification:
    """The last 20 events the site received, newest first, and why hits were dropped
    (polled by "verify installation")."""
    viewer = await signed_in(request)
    site, _ = await viewer_site(request, viewer, site_id)
    svc = services(request)
    events = await anyio.to_thread.run_sync(recent_events, svc.events, site.id)
    symptom = svc.ingest.proxy_symptom.warning
    excluded = await anyio.to_thread.run_sync(excluded_counts, svc, site)
    return Verification(
        events, svc.ingest.drop_log.of(site.id), [symptom] if symptom else [], excluded
    )


async def goals_view(request: AnyRequest, viewer: Viewer, site_id: str, **context: Any) -> Template:
    site, role = await viewer_site(request, viewer, site_id)
    meta = services(request).meta
    goals = await anyio.to_thread.run_sync(goals_of, meta, site.id)
    funnels = await anyio.to_thread.run_sync(funnels_of, meta, site.id)
    context.setdefault("funnel_errors", {})
    context.setdefault("funnel_values", {})
    return page(
        request, "goals.html", viewer, site=site, role=role, goals=goals, funnels=funnels, **context
    )


@get("/ui/sites/{site_id:str}/goals")
async def goals_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    return await goals_view(request, await signed_in(request), site_id)


@post("/ui/sites/{site_id:str}/goals")
async def add_goal(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    goal, errors = await attempt("value", actions.add_site_goal, services(request), site, form)
    if goal is None:
        return await goals_view(request, viewer, site_id, errors=errors, values=form.values())
    return redirect(f"/ui/sites/{site.id}/goals")


@post("/ui/sites/{site_id:str}/goals/{goal_id:str}/delete")
async def remove_goal(
    request: AnyRequest, site_id: FromPath[str], goal_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    await anyio.to_thread.run_sync(delete_goal, services(request).meta, site.id, goal_id)
    return redirect(f"/ui/sites/{site.id}/goals")


ROUTES = [
    sites_page,
    new_site_page,
    add_site,
    site_page,
    edit_site,
    delete_site_page,
    delete_site,
    install_page,
    recent,
    goals_page,
    add_goal,
    remove_goal,
]
