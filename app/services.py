"""The running service's parts, opened in the app's lifespan and shared by the handlers."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

from app.auth.principal import Authenticator
from app.config import Settings
from app.errors import AppError
from app.imports.run import settle_cut_short
from app.ingest.enrich import warm_agent_parsers
from app.ingest.identity import Salts
from app.ingest.pipeline import Ingestor, now_us
from app.ingest.sites import SiteDirectory
from app.ingest.writer import Writer
from app.jobs import alerts, reports
from app.jobs.background import in_background
from app.jobs.scheduler import Jobs
from app.mail import Mailer
from app.proxies import TrustedProxies
from app.storage.events import EventStore, warm_arrow
from app.storage.files import private_dir, tighten
from app.storage.meta import MetaStore, Site
from app.storage.retention import Retention, retention_of
from app.storage.store import Store

log = logging.getLogger("avocet")

SWEEP_SECONDS = 60
CHECKPOINT_POLL_SECONDS = 2.0


META_FILE = "meta.sqlite3"
EVENTS_FILE = "events.duckdb"


class StartupError(AppError):
    """The data dir can't be served as it is (the message says why and what to do)."""

    status = 409
    code = "conflict"


def open_meta(settings: Settings) -> MetaStore:
    """The SQLite store (works whether or not the server runs). Every command that opens
    it destroys the salts past their day first, so none outlives its promise while no
    server runs; the data dir and its files are made owner-only (0700 / 0600)."""
    data = private_dir(Path(settings.data_dir))
    meta = MetaStore(data / META_FILE)
    try:
        meta.destroy_expired_salts(datetime.now(UTC))
    except BaseException:
        meta.close()
        raise
    tighten(data)
    return meta


def open_stores(settings: Settings) -> tuple[MetaStore, Store]:
    """Both stores of the data dir, refusing a pair that doesn't belong together: events
    without their meta.sqlite3 would start a new instance over them, whose first-run
    setup is open to whoever comes first; a meta.sqlite3 whose events store was lost
    would silently start an empty one."""
    if settings.storage == "clickhouse":
        return _open_clickhouse(settings)
    data = Path(settings.data_dir)
    meta_path, events_path = data / META_FILE, data / EVENTS_FILE
    if not _has_bytes(events_path):
        meta = open_meta(settings)
        try:
            if meta.has_store("events"):
                raise StartupError(
                    f"{events_path} is missing or empty, but {meta_path} belongs to an instance"
                    " that had events: refusing to start an empty one. Put the file back, or"
                    " restore both from a backup with `avocet restore BACKUP`"
                )
            events = EventStore(events_path, settings.duckdb)
            meta.record_store("events")
        except BaseException:
            meta.close()
            raise
        tighten(data)
        return meta, events
    events = EventStore(events_path, settings.duckdb)
    try:
        holds_events = _holds_events(events)
        if holds_events and not _has_bytes(meta_path):
            raise _orphaned_events(meta_path, events_path)
        meta = open_meta(settings)
        try:
            if holds_events and meta.is_blank():
                raise _orphaned_events(meta_path, events_path)
            meta.record_store("events")
        except BaseException:
            meta.close()
            raise
    except BaseException:
        events.close()
        raise
    tighten(data)
    return meta, events


def _open_clickhouse(settings: Settings) -> tuple[MetaStore, Store]:
    """meta.sqlite3 in the data dir and the events in ClickHouse (issue #24, preview)."""
    from app.storage.clickhouse.store import ClickHouseEventStore

    meta = open_meta(settings)
    try:
        events = ClickHouseEventStore(settings.clickhouse_dsn)
        events.keep_at_most(settings.retention.max_total_days)
        meta.record_store("events")
    except ImportError as exc:  # chdb or clickhouse-connect: the extra isn't installed
        meta.close()
        raise StartupError(
            'storage = "clickhouse" needs the clickhouse extra: pip install'
            " 'avocet[clickhouse]' (or uv sync --extra clickhouse)"
        ) from exc
    except BaseException:
        meta.close()
        raise
    tighten(Path(settings.data_dir))
    return meta, events


def _has_bytes(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _holds_events(events: EventStore) -> bool:
    row = events.query("SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM rollup_days)")
    return bool(row[0][0])


def _orphaned_events(meta_path: Path, events_path: Path) -> StartupError:
    return StartupError(
        f"{meta_path} is missing or empty, but {events_path} holds events: refusing to start"
        " a new instance over them (its first-run setup would be open to anyone). Put the"
        " file back, or restore both from a backup with `avocet restore BACKUP`"
    )


def insert_interval(settings: Settings, store: Store) -> float:
    """Seconds between two commits of the writer: [clickhouse] insert_interval_ms on
    ClickHouse, none on DuckDB (a commit there is a cheap WAL append)."""
    return settings.clickhouse.insert_interval_ms / 1000 if store.engine == "clickhouse" else 0.0


class Services:
    """Stores, the ingest pipeline and the group-commit writer of one running server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.meta, self.events = open_stores(settings)
        self.sites = SiteDirectory(self.meta)
        self.writer = Writer(
            self.events, settings.ingest.max_batch_rows, insert_interval(settings, self.events)
        )
        self.ingest = Ingestor(
            settings,
            self.sites,
            Salts(self.meta),
            self.writer,
            hashed_sessions=self.events.engine == "clickhouse",
        )
        self.auth = Authenticator(settings, self.meta)
        self.mailer = Mailer(settings.mail)
        self.jobs = Jobs(self.events, self.meta, self.sites, self.retention, self.writer.drain)
        self.jobs.every("reports", self.send_reports, reports.EVERY)
        self.jobs.every("alerts", self.check_alerts, alerts.EVERY)
        # Queues a deletion request on the app's PrivacyJobs (set by the app's lifespan);
        # `avocet site delete/reset` hands its request over through the control socket.
        self.submit_deletion: Callable[[str], None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        # What "now" is for the stats APIs (periods, raw window); tests pin it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def start(self) -> None:
        # A timezone changed but its events not re-dated (a crash in between): do it now.
        await self.jobs.align_zones()
        await anyio.to_thread.run_sync(settle_cut_short, self.meta, self.events)
        await anyio.to_thread.run_sync(self.ingest.restore_sessions, self.events, now_us())
        # Before the first request: the first hit would otherwise stall the loop ~0.5 s,
        # and its commit wait for pyarrow's first conversion (~1-2 s with pandas installed).
        await anyio.to_thread.run_sync(warm_agent_parsers)
        await anyio.to_thread.run_sync(warm_arrow)
        self.writer.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint_forever())
        # What start-up loaded (parsers, sites, restored sessions) lives as long as the
        # process: out of the cycle collector's full passes, which stall the loop.
        gc.freeze()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_usage_forever())
        if self.settings.run_jobs:
            self.jobs.start()

    async def send_reports(self) -> int:
        """Mail the email reports due now (app/jobs/reports.py)."""
        return await reports.send_due_reports(
            self.events, self.meta, self.mailer, self.settings.base_url, self.clock()
        )

    async def check_alerts(self) -> int:
        """Mail the traffic alerts that fire now (app/jobs/alerts.py)."""
        return await alerts.check_alerts(
            self.events, self.meta, self.mailer, self.settings.base_url, self.clock()
        )

    def retention(self, site: Site) -> Retention:
        """What the site keeps: its own retention, or the instance's defaults and limits."""
        return retention_of(site, self.settings)

    def realign(self, site: Site) -> None:
        """Call after changing a site: if its timezone changed, its stored events are
        re-dated to the new zone's days in the background (Jobs.realign_soon)."""
        if site.day_zone != site.timezone:
            self.jobs.realign_soon()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for _ in self.ingest.expire_steps(now_us()):
                await asyncio.sleep(0)  # requests in between: no stall of the loop

    async def _checkpoint_forever(self) -> None:
        """Fold DuckDB's WAL into the file once it has grown past [duckdb] checkpoint_wal_mb,
        in a thread; ingest goes to the journal meanwhile (app/storage/journal.py), so no
        acknowledgement waits for it, as it would for DuckDB's own checkpoint."""
        while True:
            await asyncio.sleep(CHECKPOINT_POLL_SECONDS)
            try:
                if self.events.checkpoint_due():
                    await in_background(self.events.checkpoint)
            except Exception:
                log.exception("checkpoint failed; retrying later")

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
        for task in (self._sweeper, self._checkpointer):
            if task is not None:
                task.cancel()
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
