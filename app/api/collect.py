"""Public tracking endpoints: /collect, Plausible's /api/event, Zenovay's /e/* paths."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath

from app.api.access import services
from app.api.client import client_ip
from app.errors import EventInvalid, RateLimited, Unavailable
from app.ingest.hit import Hit, decode_hit
from app.ingest.pipeline import Client, Drop
from app.query.realtime import current_visitors
from app.services import Services

log = logging.getLogger("avocet.collect")

AnyRequest = Request[Any, Any, Any]
NO_STORE = CacheControlHeader(no_store=True)


async def read_body(request: AnyRequest) -> bytes | None:
    """The body, or None when it is over the size limit or the client went away."""
    try:
        return await request.body()
    except (RequestEntityTooLarge, InternalServerException):
        return None


def client_of(request: AnyRequest, svc: Services) -> Client:
    return Client(client_ip(request, svc.trusted_proxies), request.headers.get("user-agent", ""))


async def _silent(request: AnyRequest, site_id: str | None, name: str | None) -> None:
    """Decode and record; every failure is counted, none is reported (public endpoints)."""
    svc = services(request)
    body = await read_body(request)
    if body is None:
        svc.ingest.dropped[Drop.INVALID.value] += 1
        return
    client = client_of(request, svc)
    limits = svc.auth.limits
    if not limits.admit_hit(client.ip):
        svc.ingest.dropped[Drop.RATE_LIMITED.value] += 1
        return
    try:
        hit = decode_hit(body, site_id=site_id, default_name=name)
        if name == "engagement" and not hit.is_engagement:
            hit = msgspec.structs.replace(hit, name="engagement")
        await svc.ingest.record(hit, client, admit=limits.admit_site_hit)
    except EventInvalid:
        svc.ingest.dropped[Drop.INVALID.value] += 1
    except Exception:
        log.exception("collect failed")


@post("/collect", status_code=204)
async def collect(request: AnyRequest) -> None:
    """The tracker's endpoint: always 204, whatever happened."""
    await _silent(request, None, None)


@post("/e/{site_id:str}", status_code=204)
async def zenovay_track(request: AnyRequest, site_id: FromPath[str]) -> None:
    await _silent(request, site_id, "pageview")


@post("/e/heartbeat/{site_id:str}", status_code=204)
async def zenovay_heartbeat(request: AnyRequest, site_id: FromPath[str]) -> None:
    await _silent(request, site_id, "engagement")


@get("/e/live/{site_id:str}", cache_control=NO_STORE)
async def zenovay_live(request: AnyRequest, site_id: FromPath[str]) -> dict[str, int]:
    """Visitors in the last 5 minutes; 0 for an unknown site (ids can't be probed)."""
    svc = services(request)
    site = svc.sites.by_id(site_id)
    if site is None:
        return {"visitors": 0}
    n = await anyio.to_thread.run_sync(current_visitors, svc.events, site.id, 5)
    return {"visitors": n}


@post("/api/event", status_code=202)
async def plausible_event(request: AnyRequest) -> Response[str]:
    """Plausible's Events API: 202 "ok" (dropped hits too, flagged), 400 on a bad body."""
    svc = services(request)
    body = await read_body(request)
    if body is None:
        raise EventInvalid("request", "Unable to process request: body too large")
    hit: Hit = decode_hit(body)
    if not hit.domain and not hit.site_id:
        raise EventInvalid("domain", "can't be blank")
    client = client_of(request, svc)
    limits = svc.auth.limits
    if not limits.admit_hit(client.ip):
        svc.ingest.dropped[Drop.RATE_LIMITED.value] += 1
        raise RateLimited("Too many requests", limits.collect_retry_after(client.ip, []))
    try:
        drops = await svc.ingest.record(hit, client, admit=limits.admit_site_hit)
    except Exception as exc:
        log.exception("event commit failed")
        raise Unavailable("the event could not be stored; retry later") from exc
    if Drop.RATE_LIMITED in drops:
        sites = [s.id for s in svc.ingest.resolve_site(hit)]
        raise RateLimited(
            "Too many requests for this site", limits.collect_retry_after(client.ip, sites)
        )
    headers = {"X-Plausible-Dropped": "1"} if drops else {}
    return Response("ok", status_code=202, media_type="text/plain", headers=headers)


@get("/api/health")
async def health(request: AnyRequest) -> dict[str, Any]:
    svc = services(request)
    return {
        "status": "ok",
        "events": {
            "committed": svc.writer.committed_rows,
            "pending": svc.writer.pending_rows,
            "commits": svc.writer.commits,
            "commit_ms_avg": round(
                svc.writer.commit_seconds * 1000 / max(svc.writer.commits, 1), 2
            ),
            "commit_ms_max": round(svc.writer.slowest_commit * 1000, 2),
        },
        "dropped": dict(svc.ingest.dropped),
        "open_sessions": len(svc.ingest.sessions),
    }


ROUTES = [collect, zenovay_track, zenovay_heartbeat, zenovay_live, plausible_event, health]
