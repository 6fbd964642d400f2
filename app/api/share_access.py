"""Share links as a stats credential: the token a shared dashboard sends reads ONE site's
stats, through the same stats handlers, with the link's fixed filter added to every query.

Only the handlers that call `stats_grant` accept it (the native aggregate / timeseries /
breakdown / realtime and the v2 query). Everywhere else `authenticate` sees a JWT that is
not a user's (another signing key, another audience) and answers 401: the share token
fails closed on every route nobody opened to it.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request

from app.api.access import add_headers, services, stats_site
from app.api.client import client_ip
from app.auth.shares import ShareClaims, ShareTokens
from app.auth.tokens import looks_like_jwt
from app.errors import Forbidden, InvalidRequest, NotFound, RateLimited
from app.query.model import FilterTree
from app.query.parse import FILTER_PARAMS, parse_filters
from app.storage.meta import Site
from app.storage.shares import ShareLink, share_by_id

AnyRequest = Request[Any, Any, Any]
_TOKENS = "avocet.share_tokens"


class StatsGrant(msgspec.Struct, frozen=True):
    """What a stats request may read: a site, and filters the caller can't take away."""

    site: Site
    filters: tuple[FilterTree, ...] = ()
    share: ShareLink | None = None


def share_tokens(request: AnyRequest) -> ShareTokens:
    """The app's ShareTokens (built once, from the instance's JWT secret)."""
    state = request.app.state
    tokens: ShareTokens | None = state.get(_TOKENS)
    if tokens is None:
        tokens = ShareTokens.of(services(request).settings)
        state[_TOKENS] = tokens
    return tokens


def parse_fixed_filter(text: str) -> tuple[FilterTree, ...]:
    """A link's fixed filter ("page=/blog/*&country=DE", the native API's filter grammar)
    as filters; InvalidRequest for anything but filter parameters."""
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    names = [name for name, _ in pairs]
    for name in names:
        if name not in FILTER_PARAMS and not (name.startswith("prop:") and len(name) > 5):
            raise InvalidRequest(f"{name!r} is not a filter a share link can fix")
    if len(set(names)) != len(names):
        raise InvalidRequest("a share link's filter names each property once")
    return parse_filters(dict(pairs))


def _bearer(request: AnyRequest) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and looks_like_jwt(token) else None


def _limit(request: AnyRequest, link_id: str) -> None:
    """The per-address and per-key limits, with the link standing for the key."""
    svc = services(request)
    limits = svc.auth.limits
    for verdict, what in (
        (limits.hit(limits.per_ip, "ip", client_ip(request, svc.trusted_proxies)), "per address"),
        (limits.hit(limits.per_key, f"share:{link_id}"), "per share link"),
    ):
        add_headers(request, verdict.headers())
        if not verdict.allowed:
            raise RateLimited(
                f"rate limit exceeded ({verdict.limit} requests per minute {what})",
                verdict.retry_after,
            )


def share_grant(request: AnyRequest, claims: ShareClaims, site_id: str | None) -> StatsGrant:
    """The grant of a valid share API token: 404 when its link is revoked or expired or its
    site gone, 403 when another site is asked for."""
    svc = services(request)
    _limit(request, claims.share_id)
    link = share_by_id(svc.meta, claims.share_id)
    if link is None or not link.live(time.time()) or link.site_id != claims.site_id:
        raise NotFound("this share link has been revoked or has expired")
    if site_id and site_id != link.site_id:
        raise Forbidden("a share link reads only the stats of its own site")
    site = svc.sites.by_id(link.site_id)
    if site is None:
        raise NotFound("site not found")
    return StatsGrant(site, parse_fixed_filter(link.filters), link)


def stats_grant(request: AnyRequest, site_id: str | None) -> StatsGrant:
    """`stats_site`, or for a share token its one site and fixed filter."""
    token = _bearer(request)
    claims = share_tokens(request).check_api(token) if token is not None else None
    if claims is not None:
        return share_grant(request, claims, site_id)
    return StatsGrant(stats_site(request, site_id))
