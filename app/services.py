"""The running service's parts, opened in the app's lifespan and shared by the handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

from app.auth.principal import Authenticator
from app.config import Settings
from app.ingest.enrich import warm_agent_parsers
from app.ingest.identity import Salts
from app.ingest.pipeline import Ingestor, now_us
from app.ingest.sites import SiteDirectory
from app.ingest.writer import Writer
from app.jobs.scheduler import Jobs
from app.proxies import TrustedProxies
from app.storage.events import EventStore
from app.storage.meta import MetaStore, Site

log = logging.getLogger("avocet")

SWEEP_SECONDS = 60


def open_meta(settings: Settings) -> MetaStore:
    """The SQLite store (works whether or not the server runs)."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    return MetaStore(data / "meta.sqlite3")


class Services:
    """Stores, the ingest pipeline and the group-commit writer of one running server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.meta = open_meta(settings)
        self.events = EventStore(Path(settings.data_dir) / "events.duckdb", settings.duckdb)
        self.sites = SiteDirectory(self.meta)
        self.writer = Writer(self.events, settings.ingest.max_batch_rows)
        self.ingest = Ingestor(settings, self.sites, Salts(self.meta), self.writer)
        self.auth = Authenticator(settings, self.meta)
        self.jobs = Jobs(
            self.events, self.meta, self.sites, settings.raw_retention_days, self.writer.drain
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        # What "now" is for the stats APIs (periods, raw window); tests pin it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def start(self) -> None:
        # A timezone changed but its events not re-dated (a crash in between): do it now.
        await self.jobs.align_zones()
        await anyio.to_thread.run_sync(self.ingest.restore_sessions, self.events, now_us())
        # Before the first request: the first hit would otherwise stall the loop ~0.5 s.
        await anyio.to_thread.run_sync(warm_agent_parsers)
        self.writer.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._flusher = asyncio.get_running_loop().create_task(self._flush_usage_forever())
        if self.settings.run_jobs:
            self.jobs.start()

    def realign(self, site: Site) -> None:
        """Call after changing a site: if its timezone changed, its stored events are
        re-dated to the new zone's days in the background (Jobs.realign_soon)."""
        if site.day_zone != site.timezone:
            self.jobs.realign_soon()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.ingest.expire(now_us())

    async def flush_usage(self) -> None:
        """Write the batched usage counters and last_used_at times to SQLite."""
        pending, last_used = self.auth.usage.take()
        try:
            await anyio.to_thread.run_sync(self.auth.usage.write, pending, last_used)
        except Exception:
            self.auth.usage.give_back(pending, last_used)
            raise

    async def _flush_usage_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.limits.usage_flush_seconds)
            try:
                await self.flush_usage()
            except Exception:
                log.exception("usage flush failed; retrying later")

    async def stop(self) -> None:
        self.jobs.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        try:
            await self.flush_usage()
        except Exception:
            log.exception("usage flush on shutdown failed")
        await self.writer.stop()
        await anyio.to_thread.run_sync(self.events.checkpoint)
        self.events.close()
        self.ingest.locator.close()
        self.meta.close()
