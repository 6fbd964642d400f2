"""The APScheduler instance of a running server: started and stopped in the lifespan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio.to_thread
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.ingest.sites import SiteDirectory
from app.jobs.lifecycle import Report, compact, prune_sites, rollup_sites
from app.storage.events import EventStore

ROLLUP_EVERY = timedelta(hours=1)
PRUNE_EVERY = timedelta(hours=6)
# Let the server start answering before the catch-up after downtime begins.
FIRST_RUN_DELAY = timedelta(seconds=20)


class Jobs:
    def __init__(self, events: EventStore, sites: SiteDirectory, raw_days: int) -> None:
        self._events = events
        self._sites = sites
        self._raw_days = raw_days
        self._scheduler = AsyncIOScheduler(timezone=UTC)

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
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def rollup(self) -> Report:
        return await anyio.to_thread.run_sync(rollup_sites, self._events, self._sites.all())

    async def prune(self) -> Report:
        # Rolled up first, so a day is never pruned before its rollup exists; then what
        # is left of finished days is compacted.
        await self.rollup()
        report = await anyio.to_thread.run_sync(
            prune_sites, self._events, self._sites.all(), self._raw_days
        )
        await anyio.to_thread.run_sync(compact, self._events)
        return report
