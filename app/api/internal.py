"""The control plane's internal API (issue #24): what collectors and sessionizers ask
`avocet serve` for. Every route needs `Authorization: Bearer <[cluster] secret>`; with no
secret set there is no internal API (404, as for any unknown path)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from app.api.access import services
from app.errors import InvalidRequest, NotFound, NotOnThisStorage, Unauthorized
from app.ingest import wire
from app.ingest.identity import micros
from app.ingest.pipeline import VISIT_COLUMNS, now_us
from app.storage.exclusions import all_rules
from app.storage.store import Store

AnyRequest = Request[Any, Any, Any]


def node_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the caller holds the cluster's secret."""
    secret = connection.app.state.services.settings.cluster.secret
    if not secret:
        raise NotFound("Not Found")
    if not wire.authorized(connection.headers.get("authorization"), secret):
        raise Unauthorized("this route is for the nodes of the cluster: bearer secret needed")


def _msgpack(data: bytes, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(data, media_type=wire.CONTENT_TYPE, headers=headers)


@get("/sites", include_in_schema=False)
async def directory(request: AnyRequest) -> Response[bytes]:
    """Every site and its exclusion rules, with an ETag (a collector polls with it)."""
    svc = services(request)
    sites = await anyio.to_thread.run_sync(svc.meta.sites)
    rules = await anyio.to_thread.run_sync(all_rules, svc.meta)
    body = wire.encode(wire.Directory(sites, rules))
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers={"etag": etag})
    return _msgpack(body, {"etag": etag})


@get("/salt/{site_id:str}/{day:str}", include_in_schema=False)
async def salt(request: AnyRequest, site_id: FromPath[str], day: FromPath[str]) -> Response[bytes]:
    """The salt of a site's day, today's or yesterday's (created on first use; the one salt
    every node uses). An older day gets this process's throw-away salt."""
    svc = services(request)
    site = svc.sites.by_id(site_id)
    if site is None:
        raise NotFound("no such site")
    try:
        wanted = date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest("day: expected YYYY-MM-DD") from exc
    today = svc.ingest.local_day(site, now_us(), now=True)
    return Response(
        svc.ingest.salts.get(site.id, wanted, today), media_type="application/octet-stream"
    )


def _clickhouse(store: Store) -> Any:
    if store.engine != "clickhouse":
        raise NotOnThisStorage(
            'collectors and sessionizers need storage = "clickhouse" on the control plane'
        )
    return store


@post("/append", status_code=204, include_in_schema=False, request_max_body_size=256 * 1024 * 1024)
async def append(request: AnyRequest) -> None:
    """Commit a sessionizer's batch, once per token (ClickHouse's insert deduplication)."""
    svc = services(request)
    store = _clickhouse(svc.events)
    batch: wire.Append = wire.decode(wire.append_decoder, await request.body())
    await anyio.to_thread.run_sync(
        lambda: store.append(batch.rows, batch.bots, batch.excluded, batch_id=batch.token)
    )


@post("/drops", status_code=204, include_in_schema=False)
async def drops(request: AnyRequest) -> None:
    """A collector's dropped hits, added to the control plane's own ("verify installation"
    shows every node's)."""
    counts: wire.Drops = wire.decode(wire.drops_decoder, await request.body())
    services(request).ingest.drop_log.merge(
        {site: {reason: list(pair) for reason, pair in reasons.items()}
         for site, reasons in counts.items()}
    )  # fmt: skip


@get("/open-sessions", include_in_schema=False)
async def open_sessions(request: AnyRequest, since: int) -> Response[bytes]:
    """Each visitor's newest event since `since` (µs): a sessionizer's restart."""
    svc = services(request)
    store = _clickhouse(svc.events)
    start = datetime.fromtimestamp(since / 1e6, UTC).replace(tzinfo=None)
    _, rows = await anyio.to_thread.run_sync(store.open_sessions, start, VISIT_COLUMNS)
    out = [(r[0], r[1], r[2], micros(r[3]), *r[4:]) for r in rows]
    return _msgpack(wire.encode(out))


def internal_router() -> Router:
    return Router(
        wire.PREFIX,
        route_handlers=[directory, salt, append, drops, open_sessions],
        guards=[node_only],
        include_in_schema=False,
    )
