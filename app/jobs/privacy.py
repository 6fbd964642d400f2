"""Deletions, as background jobs with a status: one server-side user's raw events (privacy,
DSAR: rebuild the rollups of every site-day that held them), a whole site, or a site's stats
over a range of days (reset). Requests are rows in SQLite (app/storage/privacy); a request
runs as an asyncio task right after it is queued, one at a time, and queued or interrupted
requests are resumed when the server starts (every step is idempotent: a resumed run does
them all again, and a step already done deletes nothing more).

Every deletion (a user's, a site's, a reset) ends by rewriting the events file
(EventStore.rewrite): DuckDB leaves deleted rows' bytes in its free blocks, and a deletion
must delete."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import anyio.to_thread

from app.ingest.sites import SiteDirectory
from app.jobs.background import in_background
from app.query.rollup import build_rollups
from app.storage import privacy
from app.storage.imports import delete_site_imports
from app.storage.meta import MetaStore
from app.storage.purge import purge_site
from app.storage.store import Store

log = logging.getLogger("avocet.privacy")
# How often a running server looks for requests queued by `avocet site delete` / `reset`.
POLL_SECONDS = 5.0
# Fault injection for the crash tests only (tests/test_deletion.py): seconds a site deletion
# or reset waits after each step, so a test can kill the server between two of them.
STEP_PAUSE = float(os.environ.get("TEST_AVOCET_DELETION_STEP_PAUSE", "0") or 0)
# A concurrent scheduled rollup may write a day back from raw read before the delete: the
# day's stored event count then differs from raw, and it is rebuilt again (a few times).
REBUILD_ATTEMPTS = 3


def _rollup_state(store: Store, site_id: str, days: set[date]) -> dict[date, bool]:
    """Rolled-up days among these: day -> pruned."""
    if not days:
        return {}
    states = store.rollup_day_states(site_id)
    return {d: states[d][1] for d in days if d in states}


def _stale(store: Store, site_id: str, days: list[date]) -> list[date]:
    """Rolled-up, unpruned days whose stored event count differs from raw."""
    if not days:
        return []
    states = store.rollup_day_states(site_id)
    raw = store.day_counts(site_id, min(days), max(days))
    return sorted(
        d for d in days if d in states and not states[d][1] and states[d][0] != raw.get(d, 0)
    )


def _step_done(meta: MetaStore, request_id: str, step: str) -> None:
    privacy.mark_step(meta, request_id, step)
    if STEP_PAUSE:
        time.sleep(STEP_PAUSE)


def _delete_site(store: Store, meta: MetaStore, request: privacy.PrivacyRequest) -> None:
    """Everything of the site: its events and counters in DuckDB, then what it owns in
    SQLite and its row, then the events file rewritten, then the site id blanked here too."""
    site_id = request.site_id
    assert site_id is not None
    privacy.mark_running(meta, request.id, [])
    gone = store.delete_site_data(site_id)
    delete_site_imports(store, site_id)  # imported aggregates are the site's data too
    privacy.mark_deleted(meta, request.id, gone.pop("events"), gone)
    _step_done(meta, request.id, "events")
    privacy.mark_deleted(meta, request.id, 0, purge_site(meta, site_id))
    _step_done(meta, request.id, "meta")
    store.rewrite()
    _step_done(meta, request.id, "rewrite")
    privacy.mark_site_deletion_done(meta, request.id)
    meta.scrub_now()


def _reset(store: Store, meta: MetaStore, request: privacy.PrivacyRequest) -> None:
    """The site's events and counters of its days first..last (all when unset); raw events
    only when they arrived before the request (the site goes on collecting meanwhile)."""
    assert request.site_id is not None
    privacy.mark_running(meta, request.id, [])
    before = datetime.fromisoformat(request.created_at).astimezone(UTC).replace(tzinfo=None)
    first, last = (
        date.fromisoformat(d) if d else None for d in (request.first_day, request.last_day)
    )
    gone = store.delete_site_data(request.site_id, first, last, before)
    privacy.mark_deleted(meta, request.id, gone.pop("events"), gone)
    _step_done(meta, request.id, "events")
    store.rewrite()
    _step_done(meta, request.id, "rewrite")
    privacy.mark_done(meta, request.id, 0, [])


def run_request(
    store: Store, meta: MetaStore, sites: SiteDirectory, request_id: str
) -> privacy.PrivacyRequest | None:
    """Carry out one deletion request to done (or failed); safe to run again after a crash."""
    request = privacy.get_request(meta, request_id)
    if request is None or request.status in ("done", "failed"):
        return request
    try:
        if request.kind == "site":
            _delete_site(store, meta, request)
            sites.reload()
            return privacy.get_request(meta, request_id)
        site = sites.by_id(request.site_id or "")
        if site is not None and request.kind == "reset":
            _reset(store, meta, request)
            return privacy.get_request(meta, request_id)
        if site is None:
            raise RuntimeError("the site no longer exists")
        # The days found by an interrupted run count too: their raw may already be gone.
        assert request.user_key is not None
        days = store.user_days(site.id, request.user_key)
        days |= {date.fromisoformat(d) for d in request.days or ()}
        privacy.mark_running(meta, request.id, [d.isoformat() for d in days])
        deleted = store.delete_user_events(site.id, request.user_key)
        privacy.mark_deleted(meta, request.id, deleted)
        state = _rollup_state(store, site.id, days)
        rebuild = sorted(d for d, pruned in state.items() if not pruned)
        # A pruned day's raw is gone: rebuilding would replace the whole day with what is
        # left, so its rollup keeps counting this user (as anonymous aggregates).
        not_rebuilt = sorted(d.isoformat() for d, pruned in state.items() if pruned)
        pending = rebuild
        for _ in range(REBUILD_ATTEMPTS):
            if not pending:
                break
            build_rollups(store, site.id, site.day_zone, pending)
            pending = _stale(store, site.id, rebuild)
        # The user's rows leave the free blocks too (also when a resumed run finds them gone).
        if deleted or request.events_deleted:
            store.rewrite()
        privacy.mark_done(meta, request.id, len(rebuild), not_rebuilt)
    except Exception as exc:
        log.exception("privacy request %s failed", request_id)
        privacy.mark_failed(meta, request_id, str(exc) or type(exc).__name__)
    return privacy.get_request(meta, request_id)


class PrivacyJobs:
    """Runs deletion requests in the event loop's thread pool, one at a time."""

    def __init__(
        self,
        store: Store,
        meta: MetaStore,
        sites: SiteDirectory,
        lock: asyncio.Lock | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """lock: held while a request runs (the server shares its data jobs' lock). drain:
        returns once every event handed to the writer so far is committed (a site's events
        built before its deletion was queued are let in first, then deleted)."""
        self._store = store
        self._meta = meta
        self._sites = sites
        self._lock = lock or asyncio.Lock()
        self._drain = drain
        self._tasks: set[asyncio.Task[None]] = set()
        self._submitted: set[str] = set()
        self._poller: asyncio.Task[None] | None = None

    def submit(self, request_id: str) -> None:
        if request_id in self._submitted:
            return
        self._submitted.add(request_id)
        task = asyncio.get_running_loop().create_task(self._run(request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request_id: str) -> None:
        try:
            async with self._lock:
                if self._drain is not None:
                    await self._drain()
                await in_background(run_request, self._store, self._meta, self._sites, request_id)
        finally:
            self._submitted.discard(request_id)

    def resume(self) -> int:
        """Queue the requests left queued or running (by a previous run, or queued by the
        command line meanwhile: `avocet site delete`); returns how many were new."""
        found = [r for r in privacy.unfinished(self._meta) if r.id not in self._submitted]
        for request in found:
            self.submit(request.id)
        if found:
            log.info("resuming %d deletion request(s)", len(found))
        return len(found)

    def start_polling(self, seconds: float = POLL_SECONDS) -> None:
        """Pick up requests queued by another process (the command line) every `seconds`."""

        async def poll() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    found = await anyio.to_thread.run_sync(privacy.unfinished, self._meta)
                    for request in found:
                        self.submit(request.id)
                except Exception:
                    log.exception("looking for queued deletion requests failed")

        self._poller = asyncio.get_running_loop().create_task(poll())

    async def drain(self) -> None:
        """Wait for the queued requests to finish (tests, and a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the requests not started (they stay queued and resume on next start); the
        one running finishes first (its thread can't be interrupted)."""
        if self._poller is not None:
            self._poller.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
