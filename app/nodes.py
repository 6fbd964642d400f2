"""The other two kinds of node of a cluster (issue #24, README "Past one machine"):
`avocet collector` (the public tracking routes, stateless) and `avocet sessionizer` (the
session owner of a share of the visitors, which commits). `avocet serve` is the control
plane; app/api/internal.py is what it answers them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import httpx
from litestar import Litestar, Request, Response, Router, get, head, post

from app.api import collect
from app.api.headers import CORS, ResponseHeaders
from app.api.internal import node_only
from app.api.plausible_root import PlausibleRoot
from app.api.request import AppRequest
from app.auth.limits import RateLimits
from app.config import Settings
from app.errors import AppError, Unavailable, handle_error
from app.ingest import wire
from app.ingest.collector import (
    FORWARD_TIMEOUT,
    Collector,
    ControlPlane,
    Forwarder,
    RemoteSalts,
    RemoteSites,
    connect,
)
from app.ingest.enrich import warm_agent_parsers
from app.ingest.identity import SESSION_TIMEOUT_US, micros
from app.ingest.pipeline import VISIT_COLUMNS, now_us
from app.ingest.sessionizer import RemoteStore, Sessionizer, own_position
from app.ingest.writer import Appends, Writer
from app.proxies import TrustedProxies

log = logging.getLogger("avocet")
# httpx logs every request at INFO: a line per forwarded batch.
logging.getLogger("httpx").setLevel(logging.WARNING)
AnyRequest = Request[Any, Any, Any]
SWEEP_SECONDS = 60
DROPS_SECONDS = 5  # how often a collector hands its dropped hits' counts to the control plane
MAX_BATCH_BYTES = 256 * 1024 * 1024  # a forwarded batch (5,000 rows: ~2 MB)


class NodeError(AppError):
    status_code = 500
    code = "node_misconfigured"


def _require(settings: Settings, role: str, *, sessionizers: bool) -> None:
    cluster = settings.cluster
    missing = [
        name
        for name, value in (
            ("cluster.secret", cluster.secret),
            ("cluster.control_url", cluster.control_url),
            ("cluster.sessionizers", cluster.sessionizers if sessionizers else True),
        )
        if not value
    ]
    if missing:
        raise NodeError(f"`avocet {role}` needs {', '.join(missing)} (README: Past one machine)")
    if settings.storage != "clickhouse":
        raise NodeError(f'`avocet {role}` needs storage = "clickhouse", as on the control plane')


class _Limits:
    def __init__(self, settings: Settings) -> None:
        self.limits = RateLimits(settings.limits, settings.auth)


class CollectorServices:
    """A collector's parts: copies of the sites and salts, the pipeline, the forwarder."""

    def __init__(self, settings: Settings) -> None:
        _require(settings, "collector", sessionizers=True)
        self.settings = settings
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.client = httpx.AsyncClient(
            timeout=FORWARD_TIMEOUT,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        control = ControlPlane(settings, self.client)
        self.sites = RemoteSites(control)
        self.salts = RemoteSalts(control)
        self.writer = Forwarder(settings, self.client)
        self.control = control
        self.ingest = Collector(settings, self.sites, self.salts, self.writer)
        self.auth = _Limits(settings)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await connect(self.sites)
        await anyio.to_thread.run_sync(warm_agent_parsers)
        self.writer.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.sites.refresh_forever()),
            loop.create_task(self._sweep()),
            loop.create_task(self._send_drops_forever()),
        ]

    async def _send_drops_forever(self) -> None:
        while True:
            await asyncio.sleep(DROPS_SECONDS)
            try:
                await self.send_drops()
            except Exception:  # never the end of the loop: the counts wait for the next
                log.exception("handing dropped hits' counts to the control plane failed")

    async def send_drops(self) -> None:
        """The hits dropped here since the last time, to the control plane (kept for the
        next time if it can't take them now)."""
        counts = self.ingest.drop_log.drain()
        if not counts:
            return
        try:
            await self.control.drops(counts)
        except BaseException:
            self.ingest.drop_log.merge(counts)
            raise

    async def _sweep(self) -> None:
        """Destroy the salts of days before each site's yesterday, as the control plane
        does its own."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for _ in self.ingest.expire_steps(now_us()):
                await asyncio.sleep(0)

    async def stop(self) -> None:
        await self.writer.stop()
        with contextlib.suppress(Exception):  # the last ones, if the control plane answers
            await self.send_drops()
        for task in self._tasks:
            task.cancel()
        await self.client.aclose()
        self.ingest.locator.close()


class SessionizerServices:
    """A sessionizer's parts: its sessions, a group-commit writer, and the store it
    commits to (ClickHouse over http(s), or the control plane's when that is chdb)."""

    def __init__(self, settings: Settings) -> None:
        _require(settings, "sessionizer", sessionizers=False)
        self.settings = settings
        self.sessionizer = Sessionizer()
        # Which visitors are this node's (the collectors' owner_of): a restart restores
        # only their open sessions.
        self.position = own_position(settings)
        self.store: Appends
        if settings.clickhouse_dsn.startswith("chdb://"):
            self.store = RemoteStore(settings)
        else:
            from app.storage.clickhouse.store import ClickHouseEventStore

            self.store = ClickHouseEventStore(settings.clickhouse_dsn)
        self.writer = Writer(
            self.store,
            settings.ingest.max_batch_rows,
            settings.clickhouse.insert_interval_ms / 1000,
        )
        self._sweeper: asyncio.Task[None] | None = None

    def _restore(self) -> None:
        since = datetime.now(UTC).replace(tzinfo=None) - timedelta(microseconds=SESSION_TIMEOUT_US)
        if isinstance(self.store, RemoteStore):
            rows = self.store.open_sessions(since)
        else:
            _, found = self.store.open_sessions(since, VISIT_COLUMNS)  # type: ignore[attr-defined]
            rows = [(r[0], r[1], r[2], micros(r[3]), *r[4:]) for r in found]
        of = len(self.settings.cluster.sessionizers)
        owned = None if self.position is None else (self.position, of)
        restored = self.sessionizer.restore(rows, owned)
        log.info(
            "sessionizer: %d open sessions restored (%s)",
            restored,
            "every visitor's: this node is not found in [cluster] sessionizers"
            if owned is None
            else f"the visitors of position {self.position} of {of}",
        )

    async def start(self) -> None:
        for attempt in range(60):  # the control plane may still be starting
            try:
                await anyio.to_thread.run_sync(self._restore)
                break
            except httpx.TransportError:
                if attempt == 59:
                    raise
                await asyncio.sleep(1)
        self.writer.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for _ in self.sessionizer.sessions.sweep_steps(now_us()):
                await asyncio.sleep(0)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.writer.stop()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


@get("/state", include_in_schema=False)
async def collector_state(request: AnyRequest) -> dict[str, Any]:
    """What this collector holds (salt fingerprints, never salts) and forwarded."""
    svc: CollectorServices = request.app.state.services
    return svc.ingest.state()


@post("/hits", status_code=200, include_in_schema=False, request_max_body_size=MAX_BATCH_BYTES)
async def hits(request: AnyRequest) -> Response[bytes]:
    """Sessionize a collector's rows and commit them; answers after the commit, one status
    per row (wire.STORED, or wire.NO_SESSION for an engagement ping of an unknown visit)."""
    svc: SessionizerServices = request.app.state.services
    batch: wire.Hits = wire.decode(wire.hits_decoder, await request.body())
    for site_id, day, n in batch.bots:
        svc.writer.count_bot(site_id, day, n)
    for site_id, day, reason, n in batch.excluded:
        svc.writer.count_excluded(site_id, day, reason, n)
    statuses = []
    writes = []
    for row in batch.rows:
        out = svc.sessionizer.sessionize(row)
        if out is None:
            statuses.append(wire.NO_SESSION)
        else:
            statuses.append(wire.STORED)
            writes.append(svc.writer.write(out))
    try:
        await asyncio.gather(*writes)
    except Exception as exc:
        raise Unavailable("the batch could not be committed; retry later") from exc
    return Response(wire.encode(statuses), media_type=wire.CONTENT_TYPE)


@get("/api/health", include_in_schema=False)
async def sessionizer_health(request: AnyRequest) -> dict[str, Any]:
    svc: SessionizerServices = request.app.state.services
    w = svc.writer
    return {
        "status": "ok",
        "events": {"committed": w.committed_rows, "pending": w.pending_rows, "commits": w.commits},
        "open_sessions": len(svc.sessionizer.sessions),
        "position": svc.position,
    }


@head("/api/health", include_in_schema=False)
async def sessionizer_health_head() -> None:
    """200 without a body, for load balancers."""


def _node_app(settings: Settings, services: type[Any], routes: list[Any]) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            svc = services(settings)
            app.state.services = svc
            await svc.start()
        except Exception as exc:
            from app.main import startup_message

            app.state.startup_error = startup_message(exc)
            raise
        log.info("avocet %s ready", services.__name__.removesuffix("Services").lower())
        try:
            yield
        finally:
            await svc.stop()

    return Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        exception_handlers={Exception: handle_error},
        cors_config=CORS,
        openapi_config=None,
        request_max_body_size=settings.ingest.max_body_bytes,
        request_class=AppRequest,
        logging_config=None,  # the CLI's (see create_app)
        debug=False,
    )


def create_collector_app(settings: Settings) -> Litestar:
    """The public tracking routes (/collect, /e/*, /api/event), /api/health, and the
    node-only /internal/v1/state."""
    app = _node_app(
        settings,
        CollectorServices,
        [
            collect.collect,
            collect.zenovay_track,
            collect.zenovay_heartbeat,
            collect.plausible_event,
            collect.health,
            collect.health_head,
            Router(wire.PREFIX, route_handlers=[collector_state], guards=[node_only]),
        ],
    )
    app.state.plausible_base = ""
    app.asgi_handler = PlausibleRoot(
        collect.TrackingFront(
            ResponseHeaders(app.asgi_handler), CORS, settings.ingest.max_body_bytes
        ),
        settings.plausible_base_path,
    )
    return app


def create_sessionizer_app(settings: Settings) -> Litestar:
    """/internal/v1/hits for collectors, and /api/health."""
    return _node_app(
        settings,
        SessionizerServices,
        [
            sessionizer_health,
            sessionizer_health_head,
            Router(wire.PREFIX, route_handlers=[hits], guards=[node_only]),
        ],
    )
