"""One import, start to finish: hash the input (the same bytes twice add nothing), read
every record (any error stops here: nothing is written), build the rows, check the days
against the site's native data (--overlap), write it all in one transaction, then roll up
and prune as the lifecycle jobs would. The job row in SQLite says how far it got."""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import msgspec
import pyarrow as pa

from app.config import DuckDBSettings
from app.errors import AppError, Conflict
from app.imports.build import Batch, Built, Collected, Record, build_rows
from app.imports.errors import ImportInvalid
from app.query import rollup
from app.storage import import_jobs, imports
from app.storage.events import EventStore
from app.storage.import_jobs import ImportJob
from app.storage.meta import MetaStore, Site
from app.storage.store import Store

log = logging.getLogger("avocet.imports")

Progress = Callable[[int, int | None], None]  # (records read, total if known)
OVERLAP_CHOICES = ("skip", "keep-both")


@dataclass
class Source:
    """A parser: files -> records. total(): the record count when cheap to know."""

    name: str
    # Records, or Batches of them from a columnar source; counts what it skips.
    read: Callable[[list[Path], Counter[str]], Iterator[Record | Batch]]
    total: Callable[[list[Path]], int | None] = lambda paths: None
    # An aggregate source (Plausible's daily tables) runs its own import instead:
    # (store, site, job, paths, the site's native days first..last, progress) -> summary.
    aggregate: Callable[..., dict[str, Any]] | None = None


def content_hash(paths: list[Path]) -> str:
    """SHA-256 over the files' bytes, in order, each prefixed by its length."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _counted(
    source: Source, paths: list[Path], skipped: Counter[str], progress: Progress | None
) -> Iterator[Record | Batch]:
    """The source's records, streamed, with progress every 10,000 (and after each batch)."""
    total = source.total(paths)
    n = 0
    for rec in source.read(paths, skipped):
        yield rec
        if isinstance(rec, Batch):
            n += len(rec.times)
            if progress:
                progress(n, total)
            continue
        n += 1
        if progress and n % 10_000 == 0:
            progress(n, total)
    if progress:
        progress(n, n)


def _local_today(site: Site, now: datetime) -> date:
    return now.astimezone(site.zone).date()


# The scratch store's DuckDB memory (its events spill to its file beyond it), and how many
# events are built, written and rolled up at a time: Arrow tables and the questions' hash
# tables stay within them.
SCRATCH_MEMORY = "128MB"
SCRATCH_CHUNK_EVENTS = 200_000


# What DuckDB may cache of the store in a process that only imports (`avocet import` with
# no server running): the import is one pass, and its writes stayed cached up to the
# server's [duckdb] memory_limit (1 GB by default) for nothing. Rolling up the import's
# days from the store (days that held events before it) needs it: 1M GoatCounter events
# on the days of an earlier GA4 import ran out of memory at 128 MB.
IMPORT_STORE_MB = 256
# The store's limit while that process copies the events in from the scratch file: DuckDB
# held what it read and wrote up to the 256 MB (GA4 1M: 370-413 MB resident during the
# copy and the rollups' writes after it, 320-347 with the copy at 128 MB).
IMPORT_COPY_MB = 128
_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}  # fmt: skip


def import_store_settings(base: DuckDBSettings, mb: int = IMPORT_STORE_MB) -> DuckDBSettings:
    """The store's settings for an import's own process: its memory limit at most `mb`
    (a lower one configured is kept; a percentage is replaced)."""
    text = base.memory_limit.strip().upper().replace(" ", "")
    number = text.rstrip("KMGTIB")
    unit = text[len(number) :] or "B"
    try:
        configured = float(number) * _UNITS[unit] / 1e6
    except (ValueError, KeyError):
        configured = float("inf")
    if configured <= mb:
        return base
    return msgspec.structs.replace(base, memory_limit=f"{mb}MB")


def import_copy_limit(base: DuckDBSettings) -> str:
    """The store's memory limit while an import's own process copies the events in."""
    return import_store_settings(base, IMPORT_COPY_MB).memory_limit


def _scratch(site: Site, built: Built, path: Path) -> list[tuple[Any, ...]]:
    """Write the import's events into a scratch store (a file of their own, what the
    store's transaction then copies from), a run of days at a time, each run in time
    order; returns the import's own rollup rows (ROLLUP_COLUMNS), computed by the rollup
    builder from the scratch store (rows are per day: the same as all days at once)."""
    scratch = EventStore(path, DuckDBSettings(0, SCRATCH_MEMORY))
    try:
        rows: list[tuple[Any, ...]] = []
        for days, table in built.tables(SCRATCH_CHUNK_EVENTS):
            # In time order (a run of days then reads only its row groups), as tables()
            # builds them: DuckDB's ORDER BY would hold all the run's rows as it sorts.
            imports.append_table(scratch, table)
            del table
            rows += rollup.component_rows(scratch, site.id, site.zone, days)
        scratch.checkpoint()
        return rows
    finally:
        scratch.close()


# Imports running (a server may run more than one at a time) and the pool they replaced.
_pool_lock = threading.Lock()
_pool_users = 0
_pool_before: pa.MemoryPool | None = None


@contextmanager
def _system_pool() -> Iterator[None]:
    """Arrow's allocations from malloc (the system pool) while an import runs, not from
    mimalloc (Arrow's default): mimalloc maps its arena as transparent huge pages, so
    what it freed (reading's batches, each run's event table) stayed resident, 2 MB
    pages partly used, release_unused() or not, beside malloc's heap and DuckDB's own
    allocator (GA4 1M: peak RSS 441-454 MB, 417-418 with the system pool). Buffers keep
    their pool: what mimalloc allocated before goes back to it."""
    global _pool_users, _pool_before
    with _pool_lock:
        if _pool_users == 0:
            _pool_before = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _pool_users += 1
    try:
        yield
    finally:
        with _pool_lock:
            _pool_users -= 1
            if _pool_users == 0 and _pool_before is not None:
                pa.set_memory_pool(_pool_before)
                _pool_before = None


def run_import(
    meta: MetaStore,
    store: Store,
    site: Site,
    job: ImportJob,
    source: Source,
    paths: list[Path],
    *,
    raw_days: int,
    progress: Progress | None = None,
    now: datetime | None = None,
    copy_memory_limit: str | None = None,
) -> ImportJob:
    """Run a created job to its end; returns the finished job (status done, duplicate or
    failed; a failure is also raised as the AppError that explains it). copy_memory_limit:
    the store's DuckDB memory limit while the events are copied in (import_copy_limit();
    only where nothing else uses the store: the limit is the whole database's)."""
    try:
        with _system_pool():
            summary = _run(
                meta, store, site, job, source, paths, raw_days, progress, now,
                copy_memory_limit,
            )  # fmt: skip
    except AppError as exc:
        where = None
        if isinstance(exc, ImportInvalid):  # the UI shows where, field by field
            where = {"error_at": {"file": exc.file, "line": exc.line, "column": exc.column}}
        import_jobs.finish_job(meta, job.id, "failed", where, error=exc.message)
        raise
    except Exception as exc:
        log.exception("import %s failed", job.id)
        import_jobs.finish_job(meta, job.id, "failed", error=f"internal error: {exc}")
        raise
    if summary.get("duplicate_of"):
        return import_jobs.finish_job(meta, job.id, "duplicate", summary)
    return import_jobs.finish_job(meta, job.id, "done", summary)


def _run(
    meta: MetaStore,
    store: Store,
    site: Site,
    job: ImportJob,
    source: Source,
    paths: list[Path],
    raw_days: int,
    progress: Progress | None,
    now: datetime | None,
    copy_memory_limit: str | None = None,
) -> dict[str, Any]:
    if site.day_zone != site.timezone:
        raise Conflict("the site's events are being re-dated to its new timezone; retry soon")
    seen = imports.imported_hash(store, site.id, job.content_hash)
    if seen is not None:
        first = [j for j in import_jobs.list_jobs(meta, site.id) if j.seq == seen]
        return {"duplicate_of": first[0].id if first else None, "events_imported": 0}

    def report(done: int, total: int | None) -> None:
        import_jobs.set_progress(meta, job.id, done, total)
        if progress:
            progress(done, total)

    if source.aggregate is not None:
        return source.aggregate(
            store,
            site,
            job,
            paths,
            lambda first, last: imports.native_days(store, site.id, first, last),
            report,
        )
    skipped: Counter[str] = Counter()
    key = secrets.token_bytes(32)
    zone = site.zone
    # The records as compact columns (not a million objects), read as they stream in.
    collected = Collected(_counted(source, paths, skipped, report), zone, key)
    read = len(collected) + sum(skipped.values())
    days_seen = collected.days()
    overlap: set[date] = set()
    if days_seen:
        overlap = imports.native_days(store, site.id, min(days_seen), max(days_seen))
        overlap &= days_seen
    if overlap and job.overlap not in OVERLAP_CHOICES:
        raise Conflict(
            f"{len(overlap)} of the import's {len(days_seen)} days already have data of the"
            f" site ({min(overlap)} .. {max(overlap)}): choose --overlap skip (import only the"
            " other days) or --overlap keep-both (add the import to them)"
        )
    skip = overlap if job.overlap == "skip" else set()
    built = build_rows(collected, site.id, zone, job.seq, key, skipped, lambda d: d not in skip)
    del collected
    now = now or datetime.now(UTC)
    today = _local_today(site, now)
    before = today - timedelta(days=raw_days - 1)  # the first day that keeps raw events
    days = sorted(built.day_events)
    rolled: set[date] = set()
    alone: list[date] = []
    if days:
        rolled = {d for d in days if d < before} | imports.pruned_days(
            store, site.id, days[0], days[-1]
        )
        # A rolled day's native raw events must be in its rollup before the day is marked
        # pruned: build what the hourly job hasn't yet.
        pending = [d for d in rollup.days_to_build(store, site.id, today) if d in rolled]
        if pending:
            rollup.build_rollups(store, site.id, site.day_zone, pending)
        # Finished raw days that hold nothing yet: their rollups are the import's own.
        held = imports.held_days(store, site.id, days[0], days[-1])
        alone = [d for d in days if d < today and d not in rolled and d not in held]
    with tempfile.TemporaryDirectory(prefix="avocet-import-") as folder:
        scratch = Path(folder) / "scratch.duckdb"
        own_rollups = _scratch(site, built, scratch)
        imported, sessions, day_events = built.rows, built.sessions, built.day_events
        del built  # the collected columns: the events are in the scratch file now
        copying = (
            cast(EventStore, store).memory_limit(copy_memory_limit)
            if copy_memory_limit and store.engine == "duckdb"
            else nullcontext()
        )
        with copying:
            imports.apply_import(
                store,
                seq=job.seq,
                site_id=site.id,
                source=source.name,
                content_hash=job.content_hash,
                raw_from=scratch if imported and set(days) - rolled else None,
                day_events=day_events,
                rolled=own_rollups,
                rolled_days=rolled,
            )
    if alone:  # the rollups built once: the hourly job would build the very same rows
        wanted = set(alone)
        store.replace_rollups(
            site.id,
            alone,
            [r for r in own_rollups if r[1] in wanted],
            [(d, day_events[d]) for d in alone],
        )
    _settle(store, site, today, before, set(days))
    return {
        "rows_read": read,
        "events_imported": imported,
        "sessions": sessions,
        "days": len(days),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
        "days_as_rollups": len(rolled),
        "days_overlapping_native_data": len(overlap),
        "skipped": dict(skipped),
    }


def _settle(store: Store, site: Site, today: date, before: date, days: set[date]) -> None:
    """After a write or delete: roll up the touched finished days (answers read their raw
    events until then) and prune raw days past the window, as the hourly jobs would."""
    pending = [d for d in rollup.days_to_build(store, site.id, today) if d in days]
    if pending:
        rollup.build_rollups(store, site.id, site.day_zone, pending)
    rollup.prune(store, site.id, before)


def settle_cut_short(meta: MetaStore, store: Store) -> None:
    """What a stop cut short (run by a process that has the store to itself, before any
    import): on ClickHouse an import's or delete's steps are settled first (a DuckDB one
    was one transaction); then an import whose job never finished is removed, if it was
    written, and its job marked failed (nothing of it is kept), and a finished import
    that a delete removed before its job heard is marked deleted: on ClickHouse the ones
    whose delete recover() finished, on DuckDB the ones whose record is gone (on
    ClickHouse a record may be missing for another reason: a store moved there by an
    older migrate-storage, which didn't copy the records; running it again does)."""
    finished = set()
    for site_id, seq, done in imports.recover(store):
        log.warning("import %s of site %s was cut short: %s", seq, site_id, done)
        if done == "deleted":
            finished.add((site_id, seq))
    recorded = imports.recorded_imports(store)
    for job in import_jobs.list_jobs(meta):
        written = (job.site_id, job.seq) in recorded
        if job.status in ("queued", "running") and written:
            imports.delete_import(store, job.site_id, job.seq)
        elif job.status == "done" and (
            (job.site_id, job.seq) in finished or (store.engine == "duckdb" and not written)
        ):
            import_jobs.finish_job(meta, job.id, "deleted", job.summary)
    import_jobs.fail_unfinished(meta)


def delete_import(
    meta: MetaStore,
    store: Store,
    site: Site,
    job: ImportJob,
    *,
    raw_days: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Remove what the job's import added; the job stays listed, as deleted."""
    days = set(imports.import_days_of(store, site.id, job.seq))
    removed = imports.delete_import(store, site.id, job.seq)
    today = _local_today(site, now or datetime.now(UTC))
    _settle(store, site, today, today - timedelta(days=raw_days - 1), days)
    import_jobs.finish_job(meta, job.id, "deleted", {**(job.summary or {}), "deleted": removed})
    return removed
