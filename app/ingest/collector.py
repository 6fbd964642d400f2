"""A collector (`avocet collector`, issue #24): the stateless front of a cluster. It decodes,
drops bots and excluded hits, enriches, and computes the visitor id with the day's salt
from the control plane, then forwards the row to the visitor's session owner (a
sessionizer) and answers the browser only once that owner has committed it.

What it holds is a copy: the sites and their rules (refreshed every RECHECK_SECONDS from
the control plane) and the salts of today and yesterday (destroyed here as the control
plane destroys its own)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from app.config import Settings
from app.ingest import wire
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop, Ingestor, now_us
from app.ingest.shields import Shields
from app.ingest.sites import RECHECK_SECONDS
from app.storage.events import Row
from app.storage.meta import Site

log = logging.getLogger("avocet.collector")

MAX_FORWARD_ROWS = 5_000  # rows per request to a sessionizer
IN_FLIGHT = 2  # requests open to one sessionizer at once
FORWARD_TIMEOUT = httpx.Timeout(30.0, connect=2.0)


class ControlPlane:
    """The control plane's internal API, as a collector reads it."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self._url = settings.cluster.control_url.rstrip("/") + wire.PREFIX
        self._headers = wire.bearer(settings.cluster.secret)
        self._client = client

    async def directory(self, etag: str | None) -> tuple[wire.Directory | None, str | None]:
        """Every site and rule; (None, etag) when unchanged since `etag`."""
        headers = dict(self._headers)
        if etag:
            headers["if-none-match"] = etag
        response = await self._client.get(f"{self._url}/sites", headers=headers)
        if response.status_code == 304:
            return None, etag
        response.raise_for_status()
        return wire.directory_decoder.decode(response.content), response.headers.get("etag")

    async def drops(self, counts: dict[str, dict[str, list[int]]]) -> None:
        """Hand the control plane the hits this collector dropped (its verify page's)."""
        response = await self._client.post(
            f"{self._url}/drops", content=wire.encode(counts), headers=self._headers
        )
        response.raise_for_status()

    async def salt(self, site_id: str, day: date) -> bytes:
        response = await self._client.get(
            f"{self._url}/salt/{site_id}/{day.isoformat()}", headers=self._headers
        )
        response.raise_for_status()
        return response.content


class RemoteSites:
    """The control plane's sites as ingest looks them up: dict hits only; a refresh task
    brings changes (a new site, a changed rule) within RECHECK_SECONDS."""

    def __init__(self, control: ControlPlane) -> None:
        self._control = control
        self._by_id: dict[str, Site] = {}
        self._by_domain: dict[str, Site] = {}
        self._shields: dict[str, Shields] = {}
        self._etag: str | None = None

    async def refresh(self) -> None:
        got, self._etag = await self._control.directory(self._etag)
        if got is not None:
            self._by_id = {s.id: s for s in got.sites}
            self._by_domain = {s.domain: s for s in got.sites}
            self._shields = {site_id: Shields(r) for site_id, r in got.rules.items()}

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self.refresh()
            except Exception as exc:  # the control plane restarting: keep the last copy
                log.warning("sites not refreshed from the control plane: %s", exc)

    def by_id(self, site_id: str) -> Site | None:
        return self._by_id.get(site_id)

    def by_domain(self, domain: str) -> Site | None:
        return self._by_domain.get(domain.strip().lower().removeprefix("www."))

    def shields(self, site_id: str) -> Shields | None:
        return self._shields.get(site_id)

    def all(self) -> list[Site]:
        return list(self._by_id.values())


class RemoteSalts:
    """The control plane's salts of today and yesterday, fetched once per site-day (fetch()
    before get()); days before yesterday get a throw-away salt of this process, as on a
    single node (their real salt is destroyed)."""

    def __init__(self, control: ControlPlane) -> None:
        self._control = control
        self._cache: dict[tuple[str, date], bytes] = {}
        self._late: dict[tuple[str, date], bytes] = {}
        self._fetching: dict[tuple[str, date], asyncio.Future[bytes]] = {}

    def has(self, site_id: str, day: date, today: date) -> bool:
        return day < today - timedelta(days=1) or (site_id, day) in self._cache

    async def fetch(self, site_id: str, day: date) -> None:
        """Bring the salt over (one request per site-day, however many hits wait on it)."""
        key = (site_id, day)
        pending = self._fetching.get(key)
        if pending is not None:
            await pending
            return
        future = self._fetching[key] = asyncio.get_running_loop().create_future()
        try:
            salt = await self._control.salt(site_id, day)
            self._cache[key] = salt
            future.set_result(salt)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: only the waiters care
            raise
        finally:
            del self._fetching[key]

    def get(self, site_id: str, day: date, today: date) -> bytes:
        if day < today - timedelta(days=1):
            key = (site_id, day)
            late = self._late.get(key)
            if late is None:
                if len(self._late) >= 10_000:
                    self._late.clear()
                late = self._late[key] = secrets.token_bytes(16)
            return late
        return self._cache[(site_id, day)]

    def destroy_before(self, site_id: str, today: date) -> None:
        yesterday = today - timedelta(days=1)
        for key in [k for k in self._cache if k[0] == site_id and k[1] < yesterday]:
            del self._cache[key]

    def held(self) -> list[dict[str, str]]:
        """The salts held, by site, day and fingerprint (never the salt itself)."""
        return [
            {"site_id": site_id, "day": day.isoformat(), "fingerprint": wire.fingerprint(salt)}
            for (site_id, day), salt in sorted(self._cache.items())
        ]


class _Owner:
    """One sessionizer, and the rows waiting to be sent to it."""

    __slots__ = ("pending", "slots", "url", "wake")

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + wire.PREFIX + "/hits"
        self.pending: list[tuple[Row, asyncio.Future[Drop | None]]] = []
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(IN_FLIGHT)


class Forwarder:
    """The collector's writer: rows go to their session owner in batches (one request per
    sessionizer in flight while the next batch fills, IN_FLIGHT at most), and each hit's
    request returns when the owner has committed its row. A sessionizer that refuses the
    connection is skipped for the next one: the visit may split, no hit is lost. Bot and
    exclusion counts ride along with the next batch (nobody waits for them)."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self._owners = [_Owner(url) for url in settings.cluster.sessionizers]
        self._headers = wire.bearer(settings.cluster.secret)
        self._client = client
        self._bots: dict[tuple[str, int], int] = {}
        self._excluded: dict[tuple[str, int, str], int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        # The writer's counters, for /api/health: rows and requests the owners committed.
        self.committed_rows = 0
        self.commits = 0
        self.commit_seconds = 0.0
        self.slowest_commit = 0.0
        self.failed_rows = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(owner)) for owner in self._owners]

    async def stop(self, grace: float = 30.0) -> None:
        """Send what is pending and wait for the answers (at most `grace` seconds: the
        sessionizers may be gone), then stop."""
        deadline = asyncio.get_running_loop().time() + grace
        while any(o.pending for o in self._owners) or self._sends:
            if asyncio.get_running_loop().time() > deadline:
                log.error("stopping with %d rows not forwarded", self.pending_rows)
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()

    @property
    def pending_rows(self) -> int:
        return sum(len(o.pending) for o in self._owners)

    async def write(self, row: Row) -> Drop | None:
        owner = self._owners[wire.owner_of(row[0], row[4], len(self._owners))]
        future: asyncio.Future[Drop | None] = asyncio.get_running_loop().create_future()
        owner.pending.append((row, future))
        owner.wake.set()
        return await future

    def count_bot(self, site_id: str, day: int) -> None:
        key = (site_id, day)
        self._bots[key] = self._bots.get(key, 0) + 1
        self._owners[0].wake.set()

    def count_excluded(self, site_id: str, day: int, reason: str) -> None:
        key = (site_id, day, reason)
        self._excluded[key] = self._excluded.get(key, 0) + 1
        self._owners[0].wake.set()

    async def _run(self, owner: _Owner) -> None:
        first = owner is self._owners[0]
        while True:
            if not owner.pending and not (first and (self._bots or self._excluded)):
                owner.wake.clear()
                await owner.wake.wait()
                continue
            await owner.slots.acquire()
            await asyncio.sleep(0)  # hits already on their way join this batch
            batch = owner.pending[:MAX_FORWARD_ROWS]
            del owner.pending[:MAX_FORWARD_ROWS]
            bots = [(s, d, n) for (s, d), n in self._bots.items()]
            excluded = [(*key, n) for key, n in self._excluded.items()]
            self._bots, self._excluded = {}, {}
            task = asyncio.get_running_loop().create_task(self._send(owner, batch, bots, excluded))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(
        self,
        owner: _Owner,
        batch: list[tuple[Row, asyncio.Future[Drop | None]]],
        bots: list[tuple[str, int, int]],
        excluded: list[tuple[str, int, str, int]],
    ) -> None:
        try:
            body = wire.encode(wire.Hits([r for r, _ in batch], bots, excluded))
            started = time.perf_counter()
            try:
                statuses = await self._post(owner, body)
                if len(statuses) != len(batch):
                    raise RuntimeError(f"{len(statuses)} answers for {len(batch)} rows")
            except Exception as exc:
                self.failed_rows += len(batch)
                log.error("forward of %d rows failed: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            took = time.perf_counter() - started
            self.commits += 1
            self.commit_seconds += took
            self.slowest_commit = max(self.slowest_commit, took)
            self.committed_rows += statuses.count(wire.STORED)
            for (_, future), status in zip(batch, statuses, strict=True):
                if not future.done():
                    future.set_result(None if status == wire.STORED else Drop.NO_SESSION)
        finally:
            owner.slots.release()

    async def _post(self, owner: _Owner, body: bytes) -> list[int]:
        """Post to the owner; to the next sessionizer when the owner refuses the connection
        (nothing of the request reached it). Any other failure is the caller's: the owner
        may have committed, so a retry could store the rows twice."""
        start = self._owners.index(owner)
        for step in range(len(self._owners)):
            target = self._owners[(start + step) % len(self._owners)]
            try:
                response = await self._client.post(target.url, content=body, headers=self._headers)
            except httpx.ConnectError:
                if step == len(self._owners) - 1:
                    raise
                log.warning("sessionizer %s refused the connection; trying the next", target.url)
                continue
            response.raise_for_status()
            return wire.statuses_decoder.decode(response.content)
        raise AssertionError("unreachable")


class Collector(Ingestor):
    """The pipeline without sessions: rows carry the hit's own visit attributes and go to
    the Forwarder, whose session owner decides the session (and drops engagement pings of
    visits it doesn't know)."""

    salts: RemoteSalts

    def __init__(
        self, settings: Settings, sites: RemoteSites, salts: RemoteSalts, forwarder: Forwarder
    ) -> None:
        super().__init__(settings, sites, salts, forwarder)

    def build(
        self, hit: Hit, site: Site, client: Client, ts_us: int, user_id: str | None = None
    ) -> Row | Drop:
        known = self.identify(hit, site, client, ts_us, user_id)
        if isinstance(known, Drop):
            return known
        page, day, agent, visitor = known
        attrs = self.visit_attrs(hit, page, agent, client)
        return self.row(hit, site, ts_us, day, visitor, 0, page, attrs, user_id)

    async def record(
        self,
        hit: Hit,
        client: Client,
        ts_us: int | None = None,
        admit: Callable[[str], bool] | None = None,
    ) -> list[Drop]:
        ts = now_us() if ts_us is None else ts_us
        for site in self.resolve_site(hit):
            day = self.local_day(site, ts)
            today = self.local_day(site, now_us(), now=True)
            if not self.salts.has(site.id, day, today):
                await self.salts.fetch(site.id, day)
        return await super().record(hit, client, ts, admit)

    def state(self) -> dict[str, Any]:
        """What this collector holds and did: /internal/v1/state."""
        forwarder = self.writer
        assert isinstance(forwarder, Forwarder)
        return {
            "sites": len(self.sites.all()),
            "salts": self.salts.held(),
            "forwarded": forwarder.committed_rows,
            "failed": forwarder.failed_rows,
            "dropped": dict(self.dropped),
        }


async def connect(sites: RemoteSites, attempts: int = 60) -> None:
    """The first copy of the sites: a collector starts only once the control plane answers
    (a cluster's nodes start in any order), and gives up after `attempts` seconds."""
    for attempt in range(attempts):
        try:
            await sites.refresh()
            return
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code in (401, 403, 404):
                raise RuntimeError(
                    "the control plane refused this node: is [cluster] secret the same on"
                    f" both, and set? ({exc.response.status_code})"
                ) from exc
        except httpx.TransportError:
            pass
        if attempt == attempts - 1:
            break
        await asyncio.sleep(1)
    raise RuntimeError("the control plane ([cluster] control_url) did not answer")
