"""/share/{token}: a site's read-only dashboard for whoever holds the link, signed out.

The page mints a short-lived share API token (app/auth/shares.py) that its scripts send to
the stats API; a link with a password first asks for it, and a correct one sets an
HttpOnly cookie scoped to the link's path. `?embed=true` is the chrome-less version for an
<iframe>, framed only by the site's own origins and those the owner listed on the link."""

from __future__ import annotations

import time

import anyio.to_thread
from litestar import get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.api.client import client_ip
from app.api.headers import PAGE_CSP
from app.api.share_access import share_tokens
from app.auth.shares import UNLOCK_TTL_SECONDS
from app.errors import NotFound, RateLimited
from app.query.run import first_event_day
from app.storage.funnels import funnels_of
from app.storage.goals import goals_of
from app.storage.meta import Site
from app.storage.shares import ShareLink, share_by_token
from app.ui.dashboard import dashboard_context
from app.ui.pages_sites import base_url
from app.ui.web import MAX_FIELD, AnyRequest, redirect, secure_cookies, services

UNLOCK_COOKIE = "avocet_share"


def frame_ancestors(site: Site, link: ShareLink) -> str:
    """The site's own origins (https and http) and the link's listed ones."""
    origins = [f"https://{site.domain}", f"http://{site.domain}"]
    origins += [o for o in link.origins() if o not in origins]
    return " ".join(origins)


def embed_csp(site: Site, link: ShareLink) -> str:
    """The pages' default policy with frame-ancestors opened to the embedding origins."""
    directives = [d.strip() for d in PAGE_CSP.decode().split(";")]
    kept = [d for d in directives if d and not d.startswith("frame-ancestors")]
    return "; ".join([*kept, f"frame-ancestors {frame_ancestors(site, link)}"])


def _headers(site: Site, link: ShareLink, embed: bool) -> dict[str, str]:
    # Not embedded: no CSP of our own, so app/api/headers.py adds the default one
    # (frame-ancestors 'none') and X-Frame-Options: DENY.
    # A share is for people who hold the link, not for search engines.
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
    if embed:
        headers["Content-Security-Policy"] = embed_csp(site, link)
    return headers


def _live_link(request: AnyRequest, token: str) -> tuple[ShareLink, Site]:
    """The link and its site; NotFound when revoked, expired or the site is gone."""
    svc = services(request)
    link = share_by_token(svc.meta, token) if 10 <= len(token) <= 64 else None
    site = svc.sites.by_id(link.site_id) if link is not None else None
    if link is None or site is None or not link.live(time.time()):
        raise NotFound("This share link doesn't exist, was revoked or has expired.")
    return link, site


def _unlocked(request: AnyRequest, link: ShareLink) -> bool:
    if not link.has_password:
        return True
    cookie = request.cookies.get(UNLOCK_COOKIE, "")
    return bool(cookie) and share_tokens(request).check_unlock(cookie, link.id, link.password_hash)


def _embed(request: AnyRequest) -> bool:
    return request.query_params.get("embed") == "true"


def _password_page(
    request: AnyRequest,
    link: ShareLink,
    site: Site,
    embed: bool,
    error: str = "",
    status: int = 200,
) -> Template:
    return Template(
        template_name="share_password.html",
        context={
            "site": site,
            "link": link,
            "embed": embed,
            "error": error,
            "user": None,
            "path": request.url.path,
        },
        headers=_headers(site, link, embed),
        status_code=status,
    )


@get("/share/{token:str}")
async def shared_dashboard(request: AnyRequest, token: FromPath[str]) -> Template:
    """The read-only dashboard (or the password form first)."""
    link, site = await anyio.to_thread.run_sync(_live_link, request, token)
    embed = _embed(request)
    if not _unlocked(request, link):
        return _password_page(request, link, site, embed)
    svc = services(request)
    goals = await anyio.to_thread.run_sync(goals_of, svc.meta, site.id)
    # A link with a fixed filter shows no funnels (they count every visitor).
    funnels = [] if link.filters else await anyio.to_thread.run_sync(funnels_of, svc.meta, site.id)
    first = await anyio.to_thread.run_sync(first_event_day, svc.events, site.id)
    context = dashboard_context(
        site,
        embed=embed,
        share=True,
        api_token=share_tokens(request).issue_api(link.id, site.id),
        goals=goals,
        empty=first is None,
        base=base_url(request),
        funnels=funnels,
    )
    return Template(
        template_name="dashboard.html",
        context={**context, "user": None, "path": request.url.path, "role": None},
        headers=_headers(site, link, embed),
    )


def _throttle(request: AnyRequest, link: ShareLink) -> None:
    """Password guesses: the sign-in limits, per address and per link."""
    svc = services(request)
    limits = svc.auth.limits
    ip = client_ip(request, svc.trusted_proxies)
    for verdict in (
        limits.hit(limits.login_ip, "share-ip", ip),
        limits.hit(limits.login_account, "share-link", link.id),
    ):
        if not verdict.allowed:
            raise RateLimited(
                "Too many password attempts; try again in a few minutes.", verdict.retry_after
            )


@post("/share/{token:str}", status_code=303)
async def unlock(request: AnyRequest, token: FromPath[str]) -> Template | Redirect:
    """The password form. No CSRF token: it grants nothing an attacker doesn't already
    hold (the password), and a cross-site iframe couldn't send a SameSite cookie anyway."""
    link, site = await anyio.to_thread.run_sync(_live_link, request, token)
    embed = _embed(request)
    target = f"/share/{link.token}" + ("?embed=true" if embed else "")
    if not link.has_password:
        return redirect(target)
    _throttle(request, link)
    sent = (await request.form()).get("password")
    password = sent if isinstance(sent, str) and len(sent) <= MAX_FIELD else ""
    ok = await services(request).auth.passwords.verify(link.password_hash, password)
    if not ok:
        return _password_page(request, link, site, embed, "That password is not right.", 400)
    value = share_tokens(request).issue_unlock(link.id, link.password_hash)
    path = f"/share/{link.token}"
    if embed and secure_cookies(request):
        # In a cross-site <iframe> only a SameSite=None cookie comes back (HTTPS only), and
        # browsers that block third-party cookies still keep a Partitioned one (CHIPS):
        # Litestar's Cookie can't say Partitioned, so the header is written out.
        header = f"{UNLOCK_COOKIE}={value}; Max-Age={UNLOCK_TTL_SECONDS}; Path={path}"
        header += "; HttpOnly; Secure; SameSite=None; Partitioned"
        return Redirect(target, status_code=303, headers={"Set-Cookie": header})
    cookie = Cookie(
        key=UNLOCK_COOKIE,
        value=value,
        max_age=UNLOCK_TTL_SECONDS,
        path=path,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
    )
    return redirect(target, cookies=[cookie])


ROUTES = [shared_dashboard, unlock]
