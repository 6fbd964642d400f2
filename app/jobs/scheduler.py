"""The APScheduler instance of a running server: started and stopped in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.ingest.sites import SiteDirectory
from app.jobs.background import in_background
from app.jobs.lifecycle import Report, align_zones, compact, prune_sites, rollup_sites
from app.storage.events import EventStore
from app.storage.meta import MetaStore, Site
from app.storage.retention import Retention
from app.storage.store import Store

ROLLUP_EVERY = timedelta(hours=1)
PRUNE_EVERY = timedelta(hours=6)
# Let the server start answering before the catch-up after downtime begins.
FIRST_RUN_DELAY = timedelta(seconds=20)


class Jobs:
    def __init__(
        self,
        events: Store,
        meta: MetaStore,
        sites: SiteDirectory,
        raw_days: int | Callable[[Site], Retention],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        """raw_days: see prune_sites (the server passes each site's Retention)."""
        """drain: returns once every event handed to the writer so far is committed."""
        self._events = events
        self._meta = meta
        self._sites = sites
        self._raw_days = raw_days
        self._drain = drain
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        # One data job at a time (re-dating, rollups, pruning, privacy deletions): each
        # reads what the one before wrote.
        self.lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        # Jobs that read and mail, beside the data jobs (the email reports): (run, every).
        self._periodic: dict[str, tuple[Callable[[], Awaitable[object]], timedelta]] = {}

    def every(self, name: str, run: Callable[[], Awaitable[object]], period: timedelta) -> None:
        """Run `run` every `period` once started (from a minute after the start on)."""
        self._periodic[name] = (run, period)

    def start(self) -> None:
        first = datetime.now(UTC) + FIRST_RUN_DELAY
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
        self._scheduler.add_job(
            self.rollup,
            "interval",
            seconds=ROLLUP_EVERY.total_seconds(),
            next_run_time=first,
            id="rollup",
            **common,
        )
        self._scheduler.add_job(
            self.prune,
            "interval",
            seconds=PRUNE_EVERY.total_seconds(),
            next_run_time=first + timedelta(minutes=5),
            id="prune",
            **common,
        )
        for name, (run, period) in self._periodic.items():
            self._scheduler.add_job(
                run,
                "interval",
                seconds=period.total_seconds(),
                next_run_time=first + timedelta(seconds=40),
                id=name,
                **common,
            )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in self._tasks:
            task.cancel()

    async def align_zones(self) -> Report:
        """Re-date the events of sites whose timezone changed (see _align_zones)."""
        async with self.lock:
            return await self._align_zones()

    async def _align_zones(self) -> Report:
        # Events built before a change (in the old zone) may still be on their way to a
        # commit: they are let in first, so none is left on an old-zone day.
        await self._drain()
        sites = await anyio.to_thread.run_sync(self._meta.sites)
        report = await in_background(align_zones, self._events, self._meta, sites)
        if report.done:
            self._sites.reload()
        return report

    def realign_soon(self) -> None:
        """After a timezone change: re-date in the background, once no other data job runs
        (a catch-up can take minutes; the request that changed it doesn't wait), then run
        the rollup job, which rebuilds the dropped rollups in the new zone."""
        task = asyncio.get_running_loop().create_task(self._realign())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _realign(self) -> None:
        try:
            await self.align_zones()  # failures are logged and retried by the rollup job
        finally:
            if self._scheduler.running and self._scheduler.get_job("rollup") is not None:
                self._scheduler.modify_job("rollup", next_run_time=datetime.now(UTC))

    async def rollup(self) -> Report:
        async with self.lock:
            return await self._rollup()

    async def _rollup(self) -> Report:
        await self._align_zones()
        return await in_background(rollup_sites, self._events, self._sites.all())

    async def prune(self) -> Report:
        # Rolled up first, so a day is never pruned before its rollup exists; then what
        # is left of finished days is compacted.
        async with self.lock:
            await self._rollup()
            report = await in_background(
                prune_sites, self._events, self._sites.all(), self._raw_days
            )
            if isinstance(self._events, EventStore):  # ClickHouse's merges compact
                await in_background(compact, self._events)
        return report
