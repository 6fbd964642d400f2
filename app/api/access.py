"""Who may do what: authentication, limits and site access for every authenticated route.

`stats_site` is the one function every stats-like handler calls to get its site."""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from litestar import Request

from app.api.client import client_ip
from app.auth.limits import Verdict, next_month_start, seconds_to_next_month
from app.auth.principal import SESSION_COOKIE, Principal
from app.errors import Forbidden, InvalidRequest, NotFound, RateLimited, Unauthorized
from app.services import Services
from app.storage.accounts import Role
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]
EXTRA_HEADERS = "avocet.headers"  # scope state: headers app.api.headers adds to the response
_PRINCIPAL = "avocet.principal"
_QUERY_TOKENS = ("token", "api_key", "apikey", "key", "access_token")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: AnyRequest) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def add_headers(request: AnyRequest, headers: list[tuple[bytes, bytes]]) -> None:
    """Headers for this request's response, whatever it turns out to be (errors too)."""
    request.scope["state"].setdefault(EXTRA_HEADERS, []).extend(headers)


def has_credentials(request: AnyRequest) -> bool:
    headers = request.headers
    return bool(
        headers.get("authorization")
        or headers.get("x-api-key")
        or request.cookies.get(SESSION_COOKIE)
    )


def _identify(request: AnyRequest, svc: Services) -> Principal:
    if any(name in request.query_params for name in _QUERY_TOKENS):
        raise Unauthorized(
            "tokens in the query string are refused: send the key in the"
            " 'Authorization: Bearer <key>' or 'X-API-Key' header"
        )
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("use 'Authorization: Bearer <key>'")
        return svc.auth.from_bearer(token)
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        return svc.auth.from_bearer(api_key)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = svc.auth.from_session(cookie)
        _check_csrf(request, principal)
        return principal
    raise Unauthorized("an API key is required")


def _check_csrf(request: AnyRequest, principal: Principal) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token (bearer ones needn't:
    a browser never adds an Authorization header on its own)."""
    if request.method in _SAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token", "")
    if not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
        raise Forbidden("missing or wrong X-CSRF-Token header")


def _over(request: AnyRequest, verdict: Verdict, what: str) -> None:
    add_headers(request, verdict.headers())
    if not verdict.allowed:
        raise RateLimited(f"rate limit exceeded ({verdict.limit} {what})", verdict.retry_after)


def authenticate(request: AnyRequest) -> Principal:
    """The caller, counted against its limits; Unauthorized / Forbidden / RateLimited."""
    cached: Principal | None = request.scope["state"].get(_PRINCIPAL)
    if cached is not None:
        return cached
    svc = services(request)
    limits = svc.auth.limits
    ip = client_ip(request, svc.trusted_proxies)
    ip_verdict = limits.hit(limits.per_ip, "ip", ip)
    if not ip_verdict.allowed:
        _over(request, ip_verdict, "requests per minute from this address")
    try:
        principal = _identify(request, svc)
    except Unauthorized:
        # No caller to count: the address's window is the one this request used
        # (OpenAnalytics promises the headers on every response).
        add_headers(request, ip_verdict.headers())
        raise
    _over(request, limits.hit(limits.per_key, principal.subject), "requests per minute")
    _count_usage(request, svc, principal)
    request.scope["state"][_PRINCIPAL] = principal
    return principal


def _count_usage(request: AnyRequest, svc: Services, principal: Principal) -> None:
    now = time.time()
    usage = svc.auth.usage
    used = usage.used(principal.subject, now)
    limit = usage.limit
    if limit and used >= limit:
        _usage_headers(request, used, limit, now)
        raise RateLimited(f"monthly limit of {limit} requests reached", seconds_to_next_month(now))
    used = usage.count(principal.subject, principal.key.id if principal.key else None, now)
    _usage_headers(request, used, limit, now)


def _usage_headers(request: AnyRequest, used: int, limit: int, now: float) -> None:
    add_headers(
        request,
        [
            (b"x-usage-monthly", str(used).encode()),
            (b"x-usage-limit", str(limit).encode() if limit else b"unlimited"),
            (b"x-usage-reset", next_month_start(now).encode()),
        ],
    )


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(f"this API key lacks the {scope} scope")


def site_access(
    request: AnyRequest, site_id: str | None, scope: str, *, write: bool = False
) -> tuple[Site, Principal, Role]:
    """The site the caller may use with `scope`: 401 unknown caller, 403 scope / key does
    not cover the site / read-only role, 404 no such site or one the caller can't see."""
    principal = authenticate(request)
    require_scope(principal, scope)
    key = principal.key
    if not site_id:
        if key is None or key.site_id is None:
            raise InvalidRequest("Missing required parameter: site_id")
        site_id = key.site_id
    svc = services(request)
    site = svc.sites.by_id(site_id)
    role = svc.auth.role(principal, site_id) if site is not None else None
    if site is None or role is None:
        raise NotFound("site not found")
    svc.auth.check_key_covers(principal, site.id, role)
    if write and role == "viewer":
        raise Forbidden("viewers can't change this site")
    return site, principal, role


def _loopback_open(request: AnyRequest, svc: Services) -> bool:
    if not svc.settings.open_stats_on_loopback or has_credentials(request):
        return False
    try:
        return ipaddress.ip_address(client_ip(request, svc.trusted_proxies)).is_loopback
    except ValueError:
        return False


def stats_site(request: AnyRequest, site_id: str | None) -> Site:
    """The site a stats request may read (scope stats:read, a JWT, or a signed-in user who
    can see it), or Unauthorized / Forbidden / NotFound / RateLimited. When the key is bound
    to one site, site_id may be omitted."""
    svc = services(request)
    if _loopback_open(request, svc):  # development convenience, off by default
        if not site_id:
            raise InvalidRequest("Missing required parameter: site_id")
        site = svc.sites.by_id(site_id)
        if site is None:
            raise NotFound("site not found")
        return site
    return site_access(request, site_id, "stats:read")[0]
