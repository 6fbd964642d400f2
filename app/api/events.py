"""Server-side events: /api/v1/events, /api/v1/pageviews, /api/v1/events/purchase and
OpenAnalytics' /v1/projects/{id}/events. 202 only after the group commit holding the row."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath

from app.api.access import authenticate, services, site_access
from app.api.client import client_ip
from app.api.collect import read_body
from app.api.event_body import (
    EventBody,
    ServerEvent,
    check_window,
    decode_event,
    decode_purchase,
    event_from_body,
    purchase_from_body,
)
from app.errors import InvalidRequest, RateLimited, Unavailable
from app.ingest.pipeline import Client, Drop, now_us
from app.storage.meta import Site

log = logging.getLogger("avocet.events")
AnyRequest = Request[Any, Any, Any]
Accepted = dict[str, object]


async def _body(request: AnyRequest) -> bytes:
    raw = await read_body(request)
    if raw is None:
        raise InvalidRequest("the body is too large")
    return raw


def _site(request: AnyRequest, site_id: str | None) -> Site:
    """The site the caller may write events to, within the per-site limit."""
    site = site_access(request, site_id, "events:write", write=True)[0]
    limits = services(request).auth.limits
    verdict = limits.hit(limits.per_site, "site", site.id)
    if not verdict.allowed:
        raise RateLimited(
            f"this site is over {verdict.limit} events per minute", verdict.retry_after
        )
    return site


async def store(request: AnyRequest, site: Site, event: ServerEvent) -> Response[Accepted]:
    """Build the row with the same pipeline as /collect and wait for its commit."""
    svc = services(request)
    now = now_us()
    check_window(
        event.ts_us,
        now,
        svc.settings.ingest.max_future_seconds,
        svc.settings.raw_retention_days,
    )
    client = Client(
        event.ip or client_ip(request, svc.trusted_proxies),
        event.user_agent or request.headers.get("user-agent") or "",
    )
    row = svc.ingest.build(event.hit, site, client, event.ts_us or now, user_id=event.user_id)
    if row is Drop.BOT:
        raise InvalidRequest(
            "user_agent: looks like a bot; send the visitor's user_agent, or a user_id /"
            " visitor_id to identify the visitor"
        )
    if isinstance(row, Drop):
        raise InvalidRequest(f"url: the event could not be used ({row.value})")
    try:
        await svc.writer.write(row)
    except Exception as exc:
        log.exception("server event commit failed")
        raise Unavailable("the event could not be stored; retry later") from exc
    body: Accepted = {
        "success": True,
        "event_id": f"evt_{secrets.token_hex(12)}",
        "status": "queued",
    }
    return Response(body, status_code=202)


async def _event(
    request: AnyRequest, path_site: str | None, convert: Callable[[EventBody, Site], ServerEvent]
) -> Response[Accepted]:
    authenticate(request)  # 401 before any 400 about the body
    body = decode_event(await _body(request))
    site = _site(request, path_site or body.site_id)
    return await store(request, site, convert(body, site))


@post("/api/v1/events", status_code=202)
async def send_event(request: AnyRequest) -> Response[Accepted]:
    """A custom event (Infinity, OpenAnalytics or Plausible field names)."""
    return await _event(request, None, lambda b, s: event_from_body(b, s.id, s.domain))


@post("/api/v1/pageviews", status_code=202)
async def send_pageview(request: AnyRequest) -> Response[Accepted]:
    return await _event(
        request, None, lambda b, s: event_from_body(b, s.id, s.domain, name="pageview")
    )


@post("/api/v1/events/purchase", status_code=202)
async def send_purchase(request: AnyRequest) -> Response[Accepted]:
    """Infinity's purchase: price in minor units -> revenue in the currency's major unit."""
    authenticate(request)
    body = decode_purchase(await _body(request))
    site = _site(request, body.site_id)
    return await store(request, site, purchase_from_body(body, site.id, site.domain))


@post("/v1/projects/{project_id:str}/events", status_code=202)
async def project_event(request: AnyRequest, project_id: FromPath[str]) -> Response[Accepted]:
    """OpenAnalytics' path: the project id is the site id."""
    return await _event(request, project_id, lambda b, s: event_from_body(b, s.id, s.domain))


ROUTES = [send_event, send_pageview, send_purchase, project_event]
