"""Public tracking endpoints: /collect, Plausible's /api/event, Zenovay's /e/* paths."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Literal, Protocol

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, head, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader
from litestar.enums import ScopeType
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from app.api.access import services
from app.api.client import client_ip, resolve_ip
from app.api.headers import request_id
from app.auth.limits import RateLimits
from app.errors import EventInvalid, RateLimited, Unavailable
from app.ingest.hit import Hit, decode_hit
from app.ingest.pipeline import Client, Drop, Ingestor
from app.proxies import TrustedProxies
from app.query.realtime import current_visitors

log = logging.getLogger("avocet.collect")

AnyRequest = Request[Any, Any, Any]


class _Limited(Protocol):
    @property
    def limits(self) -> RateLimits: ...


class _Commits(Protocol):
    committed_rows: int
    commits: int
    commit_seconds: float
    slowest_commit: float

    @property
    def pending_rows(self) -> int: ...


class Tracking(Protocol):
    """What the tracking routes use of the app's services: a server's Services, or a
    collector's (app/nodes.py)."""

    @property
    def trusted_proxies(self) -> TrustedProxies: ...
    @property
    def ingest(self) -> Ingestor: ...
    @property
    def auth(self) -> _Limited: ...
    @property
    def writer(self) -> _Commits: ...


def tracking(request: AnyRequest) -> Tracking:
    return request.app.state.services  # type: ignore[no-any-return]


NO_STORE = CacheControlHeader(no_store=True)


async def read_body(request: AnyRequest) -> bytes | None:
    """The body, or None when it is over the size limit or the client went away."""
    try:
        return await request.body()
    except (RequestEntityTooLarge, InternalServerException):
        return None


def client_of(request: AnyRequest, svc: Tracking) -> Client:
    return Client(client_ip(request, svc.trusted_proxies), request.headers.get("user-agent", ""))


async def track(
    svc: Tracking, body: bytes | None, client: Client, site_id: str | None, name: str | None
) -> None:
    """Decode and record; every failure is counted, none is reported (public endpoints)."""
    if body is None:
        svc.ingest.dropped[Drop.INVALID.value] += 1
        return
    svc.ingest.proxy_symptom.observe(client.ip)
    limits = svc.auth.limits
    if not limits.admit_hit(client.ip):
        svc.ingest.dropped[Drop.RATE_LIMITED.value] += 1
        # Decoded only to tell its site; a body that fails here fails (and is logged) on
        # the normal path too, and a public endpoint answers 204 whatever happens.
        with contextlib.suppress(Exception):
            count_rate_limited(svc, decode_hit(body, site_id=site_id))
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


def count_rate_limited(svc: Tracking, hit: Hit) -> None:
    """A hit over the per-client limit, counted for its sites' "verify installation"."""
    for site in svc.ingest.resolve_site(hit):
        svc.ingest.drop_log.count(site.id, Drop.RATE_LIMITED.value)


# The Litestar handlers below document the silent routes (OpenAPI, CORS preflight) and
# answer them if TrackingFront is not mounted; in the served app TrackingFront does.
@post("/collect", status_code=204)
async def collect(request: AnyRequest) -> None:
    """The tracker's endpoint: always 204, whatever happened."""
    svc = tracking(request)
    await track(svc, await read_body(request), client_of(request, svc), None, None)


@post("/e/{site_id:str}", status_code=204)
async def zenovay_track(request: AnyRequest, site_id: FromPath[str]) -> None:
    svc = tracking(request)
    await track(svc, await read_body(request), client_of(request, svc), site_id, "pageview")


@post("/e/heartbeat/{site_id:str}", status_code=204)
async def zenovay_heartbeat(request: AnyRequest, site_id: FromPath[str]) -> None:
    svc = tracking(request)
    await track(svc, await read_body(request), client_of(request, svc), site_id, "engagement")


def silent_route(path: str) -> tuple[str | None, str | None] | None:
    """(site id, default event name) when path is one of the silent tracking routes."""
    if path == "/collect":
        return None, None
    if path.startswith("/e/"):
        parts = path[3:].split("/")
        if len(parts) == 1 and parts[0]:
            return parts[0], "pageview"
        if len(parts) == 2 and parts[0] == "heartbeat" and parts[1]:
            return parts[1], "engagement"
    return None


class TrackingFront:
    """The hot path: POSTs to the silent tracking routes are answered here, in front of
    Litestar's middleware, routing and Request objects, which cost about as much CPU per
    hit as the whole ingest pipeline does (bench/ingest.py: ~45 % more hits per second).
    Same answer as the handlers above: 204, the CORS simple-response headers, and
    X-Request-ID (itself: it sits outside app.api.headers, which adds it to everything
    else). Everything else goes to the app it wraps."""

    def __init__(self, app: ASGIApp, cors: CORSConfig, max_body_bytes: int) -> None:
        self.app = app
        self._max_body = max_body_bytes
        # What Litestar's CORS middleware adds to a response to a request with an Origin.
        simple = {
            **cors.simple_headers,
            "access-control-allow-headers": ", ".join(sorted(set(cors.allow_headers))),
            "access-control-allow-methods": ", ".join(sorted(set(cors.allow_methods))),
        }
        self._cors = [(k.lower().encode(), v.encode()) for k, v in simple.items()]
        self._config = cors
        self._all_origins = cors.is_allow_all_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            silent_route(scope["path"])
            if scope["type"] == ScopeType.HTTP and scope["method"] == "POST"
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        svc: Tracking = scope["app"].state.services
        client = scope.get("client")
        peer = client[0] if client else ""
        user_agent = forwarded = origin = None
        has_cookie = False
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif name == b"origin":
                origin = value
            elif name == b"cookie":
                has_cookie = True
        body = await self._body(receive)
        if body is False:
            return  # the client went away before sending its body: nobody to answer
        ip = resolve_ip(peer, forwarded, svc.trusted_proxies)
        await track(svc, body, Client(ip, user_agent or ""), *route)
        headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id(scope))]
        if origin is not None:
            if (has_cookie and self._all_origins) or (  # echo the origin instead of "*"
                not self._all_origins and self._config.is_origin_allowed(origin.decode("latin-1"))
            ):
                headers += [h for h in self._cors if h[0] != b"access-control-allow-origin"]
                headers += [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
            else:
                headers += self._cors
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 204,
            "headers": headers,
        }
        await send(start)
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(end)

    async def _body(self, receive: Receive) -> bytes | Literal[False] | None:
        """The body; None when over the size limit (the rest is ignored); False on disconnect."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks) if len(chunks) != 1 else chunks[0]


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
    svc = tracking(request)
    body = await read_body(request)
    if body is None:
        raise EventInvalid("request", "Unable to process request: body too large")
    hit: Hit = decode_hit(body)
    if not hit.domain and not hit.site_id:
        raise EventInvalid("domain", "can't be blank")
    client = client_of(request, svc)
    svc.ingest.proxy_symptom.observe(client.ip)
    limits = svc.auth.limits
    if not limits.admit_hit(client.ip):
        svc.ingest.dropped[Drop.RATE_LIMITED.value] += 1
        count_rate_limited(svc, hit)
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
    svc = tracking(request)
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


@head("/api/health", include_in_schema=False)
async def health_head() -> None:
    """200 without a body: what load balancers and uptime checks that probe with HEAD need."""


ROUTES = [
    collect,
    zenovay_track,
    zenovay_heartbeat,
    zenovay_live,
    plausible_event,
    health,
    health_head,
]
