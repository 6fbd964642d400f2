"""Pages: a site's share links (owners and admins create and revoke them)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.api.share_access import parse_fixed_filter
from app.auth.passwords import MAX_PASSWORD
from app.errors import AppError
from app.query.parse import FILTER_PARAMS
from app.storage.accounts import Role
from app.storage.meta import Site
from app.storage.shares import ShareLink, add_share_link, delete_share_link, share_links_of
from app.ui.actions import attempt_async, collect
from app.ui.pages_sites import base_url
from app.ui.web import (
    AnyRequest,
    Form,
    FormInvalid,
    Viewer,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_site,
)

EDITORS: tuple[Role, ...] = ("owner", "admin")
MIN_SHARE_PASSWORD = 8
MAX_ORIGINS = 10
# What the "Only show" picker offers: the native API's filter properties, by label.
FILTER_CHOICES = {
    "page": "Page",
    "entry_page": "Entry page",
    "hostname": "Hostname",
    "source": "Source",
    "channel": "Channel",
    "utm_campaign": "UTM campaign",
    "country": "Country (ISO code)",
    "device": "Device",
}
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:]+\])(:\d{1,5})?$")
assert set(FILTER_CHOICES) <= set(FILTER_PARAMS)


def share_url(base: str, link: ShareLink) -> str:
    return f"{base}/share/{link.token}"


def embed_snippet(base: str, link: ShareLink, site: Site) -> str:
    """The <iframe> an owner pastes into a page of their site."""
    src = share_url(base, link) + "?embed=true"
    return (
        f'<iframe src="{src}" title="{site.domain} analytics" loading="lazy"'
        ' style="width: 100%; height: 1600px; border: 0"></iframe>'
    )


def parse_origins(value: str) -> str:
    """'https://a.example, http://b.example:8080' -> the origins, space-separated."""
    found: list[str] = []
    for item in re.split(r"[\s,]+", value.strip().lower()):
        if not item:
            continue
        origin = item.rstrip("/")
        if not _ORIGIN.match(origin):
            raise FormInvalid(
                {"frame_origins": f"{item!r} is not an origin like https://blog.example.com"}
            )
        if origin not in found:
            found.append(origin)
    if len(found) > MAX_ORIGINS:
        raise FormInvalid({"frame_origins": f"List at most {MAX_ORIGINS} origins."})
    return " ".join(found)


def parse_filter(prop: str, value: str) -> str:
    """The fixed filter as a native query string ('' when none is picked)."""
    if not prop:
        return ""
    if prop not in FILTER_CHOICES:
        raise FormInvalid({"filter_value": "Pick a property from the list."})
    if not value:
        raise FormInvalid({"filter_value": "Type the value to show, e.g. /blog/*"})
    text = urlencode({prop: value})
    try:
        parse_fixed_filter(text)
    except AppError as exc:
        raise FormInvalid({"filter_value": exc.message}) from exc
    return text


def parse_expiry(value: str, site: Site, now: datetime) -> int | None:
    """A date -> the end of that day in the site's timezone (unix seconds); '' -> never."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise FormInvalid({"expires": "Use a date like 2027-01-31."}) from exc
    zone = site.zone
    if day < now.astimezone(zone).date():
        raise FormInvalid({"expires": "Pick today or a later date."})
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return int(end.timestamp())


def check_share_password(value: str) -> str | None:
    if not value:
        return None
    if len(value) < MIN_SHARE_PASSWORD:
        raise FormInvalid({"password": f"Use at least {MIN_SHARE_PASSWORD} characters."})
    if len(value) > MAX_PASSWORD:
        raise FormInvalid({"password": f"Use at most {MAX_PASSWORD} characters."})
    return value


async def create_link(request: AnyRequest, viewer: Viewer, site: Site, form: Form) -> ShareLink:
    """Validates every field at once; the password is hashed off the event loop."""
    svc = services(request)
    errors: dict[str, str] = {}
    name = form.get("name") or "Shared dashboard"
    if len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    password = collect(errors, check_share_password, form.raw("password"))
    expires = collect(errors, parse_expiry, form.get("expires"), site, svc.clock())
    filters = collect(errors, parse_filter, form.get("filter_property"), form.get("filter_value"))
    origins = collect(errors, parse_origins, form.get("frame_origins"))
    if errors:
        raise FormInvalid(errors)
    password_hash = await svc.auth.passwords.hash(password) if password else None
    return await anyio.to_thread.run_sync(
        lambda: add_share_link(
            svc.meta,
            site_id=site.id,
            name=name,
            created_by=viewer.user.id,
            password_hash=password_hash,
            filters=filters or "",
            frame_origins=origins or "",
            expires_at=expires,
        )
    )


async def _sharing(
    request: AnyRequest, viewer: Viewer, site: Site, role: Role, **context: Any
) -> Template:
    links = await anyio.to_thread.run_sync(share_links_of, services(request).meta, site.id)
    base = base_url(request)
    rows = [
        {"link": link, "url": share_url(base, link), "embed": embed_snippet(base, link, site)}
        for link in links
    ]
    now = services(request).clock().timestamp()
    return page(
        request,
        "sharing.html",
        viewer,
        site=site,
        role=role,
        rows=rows,
        now=now,
        choices=FILTER_CHOICES,
        **context,
    )


@get("/ui/sites/{site_id:str}/sharing")
async def sharing_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    created = request.query_params.get("created")
    return await _sharing(request, viewer, site, role, created=created)


@post("/ui/sites/{site_id:str}/sharing")
async def add_link(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    link, errors = await attempt_async("name", create_link, request, viewer, site, form)
    if link is None:
        return await _sharing(request, viewer, site, role, errors=errors, values=form.values())
    return redirect(f"/ui/sites/{site.id}/sharing?created={link.id}#link-{link.id}")


@post("/ui/sites/{site_id:str}/sharing/{share_id:str}/delete")
async def revoke_link(
    request: AnyRequest, site_id: FromPath[str], share_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    await anyio.to_thread.run_sync(delete_share_link, services(request).meta, site.id, share_id)
    return redirect(f"/ui/sites/{site.id}/sharing")


ROUTES = [sharing_page, add_link, revoke_link]
