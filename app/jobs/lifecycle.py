"""Data lifecycle jobs: build daily rollups for finished site-days, prune raw days past the
retention window once they are rolled up, compact finished days, re-date the events of a
site whose timezone changed. Each runs one instance at a time, each write is one
transaction, and a failure is logged and retried on the next run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.query import rollup
from app.storage.events import EventStore
from app.storage.meta import MetaStore, Site
from app.storage.retention import Retention
from app.storage.store import Store

log = logging.getLogger("avocet.jobs")


@dataclass
class Report:
    """What a job did, per site id (per ISO day for compaction), for logs, the CLI and
    tests."""

    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    expired: dict[str, dict[str, int]] = field(default_factory=dict)
    rewritten: int | None = None  # compaction: the events file's new size, if rewritten


def local_today(site: Site, now: datetime) -> date:
    return now.astimezone(ZoneInfo(site.timezone)).date()


def align_zones(store: Store, meta: MetaStore, sites: list[Site]) -> Report:
    """Re-date the stored events of each site whose timezone changed since they were
    written (Site.day_zone != Site.timezone), then record the new zone (blocking). Re-dating
    is idempotent, so a crash between the two steps only repeats it on the next run."""
    report = Report()
    for site in sites:
        if site.day_zone == site.timezone:
            continue
        try:
            moved = rollup.redate(store, site.id, site.timezone)
            meta.set_day_zone(site.id, site.timezone)
            log.info(
                "%s: timezone %s -> %s, %d events moved to another day",
                site.domain,
                site.day_zone,
                site.timezone,
                moved,
            )
            report.done[site.id] = moved
        except Exception as exc:
            log.exception("re-dating %s failed; retried on the next run", site.domain)
            report.failed[site.id] = str(exc)
    return report


def _aligned(site: Site, report: Report) -> bool:
    """Whether the site's stored days are in its timezone (else align_zones hasn't re-dated
    them yet, and its failure was logged): rollups and pruning wait for it."""
    if site.day_zone == site.timezone:
        return True
    report.failed[site.id] = "its events are not re-dated to its new timezone yet"
    return False


def rollup_sites(
    store: Store,
    sites: list[Site],
    now: datetime | None = None,
    progress: Callable[[Site, int], None] | None = None,
) -> Report:
    """Roll up every finished site-day that has none or changed since (blocking)."""
    now = now or datetime.now(UTC)
    report = Report()
    for site in sites:
        if not _aligned(site, report):
            continue
        try:
            days = rollup.days_to_build(store, site.id, local_today(site, now))
            if progress:
                progress(site, len(days))
            if days:
                rollup.build_rollups(store, site.id, site.day_zone, days)
                log.info("rolled up %d days of %s", len(days), site.domain)
            report.done[site.id] = len(days)
        except Exception as exc:  # one site's failure must not stop the others
            log.exception("rollup of %s failed; retried on the next run", site.domain)
            report.failed[site.id] = str(exc)
    return report


def prune_sites(
    store: Store,
    sites: list[Site],
    raw_days: int | Callable[[Site], Retention],
    now: datetime | None = None,
    dry_run: bool = False,
) -> Report:
    """Delete rolled-up raw events older than the site's raw retention in local days, and
    everything older than its total retention (blocking). raw_days: one number of raw days
    for every site (kept forever), or each site's Retention (app/storage/retention.py).
    Report.done counts raw events deleted; Report.expired the rows past total retention."""
    now = now or datetime.now(UTC)
    report = Report()
    for site in sites:
        if not _aligned(site, report):
            continue
        keep = raw_days(site) if callable(raw_days) else Retention(raw_days, 0)
        today = local_today(site, now)
        before = today - timedelta(days=keep.raw_days - 1)
        try:
            if keep.total_days and not dry_run:
                # Never a day past the total retention, rolled up or not.
                last = today - timedelta(days=keep.total_days)
                gone = store.delete_site_data(site.id, last=last)
                if any(gone.values()):
                    report.expired[site.id] = gone
                    log.info(
                        "%s: deleted what is past %d days: %s", site.domain, keep.total_days, gone
                    )
            report.done[site.id] = rollup.prune(store, site.id, before, dry_run=dry_run)
        except Exception as exc:
            log.exception("prune of %s failed; retried on the next run", site.domain)
            report.failed[site.id] = str(exc)
    return report


def days_to_compact(store: EventStore, now: datetime | None = None) -> list[date]:
    """Days with raw events, finished in every zone (two UTC days back: a site-local day
    ends by the next UTC day's noon at the latest) and not compacted yet."""
    now = now or datetime.now(UTC)
    last = now.astimezone(UTC).date() - timedelta(days=2)
    rows = store.query(
        "SELECT DISTINCT day FROM events WHERE day <= ?"
        " AND day NOT IN (SELECT day FROM compacted_days) ORDER BY day",
        [last],
    )
    return [r[0] for r in rows]


def compact(
    store: EventStore,
    now: datetime | None = None,
    progress: Callable[[date, int, int], None] | None = None,
) -> Report:
    """Rewrite each finished day's raw events in (site, session, time) order, one day per
    transaction (ingestion goes on between days); Report.done is keyed by ISO day.
    progress(day, i, n) is called before each day."""
    report = Report()
    days = days_to_compact(store, now)
    for i, day in enumerate(days, 1):
        if progress:
            progress(day, i, len(days))
        try:
            report.done[day.isoformat()] = store.compact_day(day)
        except Exception as exc:
            log.exception("compaction of %s failed; retried on the next run", day)
            report.failed[day.isoformat()] = str(exc)
    if days:
        log.info("compacted %d days", len(report.done))
        # Compaction frees the blocks of the rows it rewrote; past ~10 % of the file they
        # are given back to the disk by a rewrite (EventStore.reclaim), ingest going on.
        try:
            size = store.reclaim()
        except Exception as exc:
            log.exception("rewriting the events file failed; retried on the next run")
            report.failed["rewrite"] = str(exc)
        else:
            if size is not None:
                report.rewritten = size
                log.info("events file rewritten: %d bytes", size)
    return report
