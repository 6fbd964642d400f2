"""Privacy (DSAR) deletions: delete one server-side user's raw events and rebuild the
rollups of every site-day that held them. Requests are rows in SQLite (app/storage/privacy);
a request runs as an asyncio task right after it is queued, one at a time, and queued or
interrupted requests are resumed when the server starts (every step is idempotent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import anyio.to_thread

from app.ingest.sites import SiteDirectory
from app.query.rollup import build_rollups
from app.storage import privacy
from app.storage.events import EventStore
from app.storage.meta import MetaStore

log = logging.getLogger("avocet.privacy")
# A concurrent scheduled rollup may write a day back from raw read before the delete: the
# day's stored event count then differs from raw, and it is rebuilt again (a few times).
REBUILD_ATTEMPTS = 3


def _days_with_user(store: EventStore, site_id: str, user_key: int) -> set[date]:
    rows = store.query(
        "SELECT DISTINCT day FROM events WHERE site_id = ? AND user_key = ?", [site_id, user_key]
    )
    return {r[0] for r in rows}


def _rollup_state(store: EventStore, site_id: str, days: set[date]) -> dict[date, bool]:
    """Rolled-up days among these: day -> pruned."""
    if not days:
        return {}
    rows = store.query(
        "SELECT day, pruned FROM rollup_days WHERE site_id = ?"
        " AND day IN (SELECT unnest(?::DATE[]))",
        [site_id, sorted(days)],
    )
    return {d: bool(p) for d, p in rows}


def _stale(store: EventStore, site_id: str, days: list[date]) -> list[date]:
    """Rolled-up, unpruned days whose stored event count differs from raw."""
    if not days:
        return []
    rows = store.query(
        "SELECT r.day FROM rollup_days r LEFT JOIN (SELECT day, count(*) AS n FROM events"
        " WHERE site_id = ? GROUP BY day) e ON e.day = r.day"
        " WHERE r.site_id = ? AND NOT r.pruned AND r.day IN (SELECT unnest(?::DATE[]))"
        " AND r.events IS DISTINCT FROM coalesce(e.n, 0)",
        [site_id, site_id, days],
    )
    return sorted(r[0] for r in rows)


def run_request(
    store: EventStore, meta: MetaStore, sites: SiteDirectory, request_id: str
) -> privacy.PrivacyRequest | None:
    """Carry out one deletion request to done (or failed); safe to run again after a crash."""
    request = privacy.get_request(meta, request_id)
    if request is None or request.status in ("done", "failed"):
        return request
    try:
        site = sites.by_id(request.site_id)
        if site is None:
            raise RuntimeError("the site no longer exists")
        # The days found by an interrupted run count too: their raw may already be gone.
        days = _days_with_user(store, site.id, request.user_key)
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
        privacy.mark_done(meta, request.id, len(rebuild), not_rebuilt)
    except Exception as exc:
        log.exception("privacy request %s failed", request_id)
        privacy.mark_failed(meta, request_id, str(exc) or type(exc).__name__)
    return privacy.get_request(meta, request_id)


class PrivacyJobs:
    """Runs deletion requests in the event loop's thread pool, one at a time."""

    def __init__(
        self,
        store: EventStore,
        meta: MetaStore,
        sites: SiteDirectory,
        lock: asyncio.Lock | None = None,
    ) -> None:
        """lock: held while a request runs (the server shares its data jobs' lock)."""
        self._store = store
        self._meta = meta
        self._sites = sites
        self._lock = lock or asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request_id: str) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(
                run_request, self._store, self._meta, self._sites, request_id
            )

    def resume(self) -> int:
        """Queue the requests a previous run left queued or running; returns how many."""
        found = privacy.unfinished(self._meta)
        for request in found:
            self.submit(request.id)
        if found:
            log.info("resuming %d privacy request(s)", len(found))
        return len(found)

    async def drain(self) -> None:
        """Wait for the queued requests to finish (tests, and a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the requests not started (they stay queued and resume on next start); the
        one running finishes first (its thread can't be interrupted)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
