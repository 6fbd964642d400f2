"""Who may read what: the one function every stats-like handler calls to get its site."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request

from app.api.client import client_ip
from app.errors import InvalidRequest, NotFound, Unauthorized
from app.services import Services
from app.storage.meta import Site


def services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def stats_site(request: Request[Any, Any, Any], site_id: str | None) -> Site:
    """The site a stats request may read, or Unauthorized / Forbidden / NotFound.

    Until API keys exist, stats are open only to loopback, and only when configured."""
    svc = services(request)
    allowed = False
    if svc.settings.open_stats_on_loopback:
        try:
            allowed = ipaddress.ip_address(client_ip(request, svc.trusted_proxies)).is_loopback
        except ValueError:
            allowed = False
    if not allowed:
        raise Unauthorized("an API key is required")
    if not site_id:
        raise InvalidRequest("Missing required parameter: site_id")
    site = svc.sites.by_id(site_id)
    if site is None:
        raise NotFound("site not found")
    return site
