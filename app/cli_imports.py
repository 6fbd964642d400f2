"""`avocet import SOURCE PATH... --site ID`, `avocet import list` and `avocet import delete`.

With the server stopped, the command opens the data dir itself. While the server runs
(it holds the events file), the files are uploaded to POST /api/v1/sites/{id}/imports
with an API key or JWT (--token or AVOCET_TOKEN), and the job is followed until it ends:
the same token path `avocet backup` uses."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.cli_json import print_json
from app.config import DuckDBSettings, Settings
from app.errors import AppError, InvalidRequest, NotFound
from app.imports.sources import AVAILABLE
from app.storage.events import EventStore, StoreLocked
from app.storage.import_jobs import ImportJob
from app.storage.meta import MetaStore, Site
from app.storage.store import Store


class ServerError(AppError):
    status = 502
    code = "server_error"


def _site(meta: MetaStore, ref: str) -> Site:
    for site in meta.sites():
        if ref in (site.id, site.domain):
            return site
    raise NotFound(f"no site with id or domain {ref!r}")


@contextmanager
def progress_bar(
    args: argparse.Namespace, label: str
) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on stderr (a terminal, or --progress), never under --json."""
    show = (sys.stderr.isatty() or getattr(args, "progress", False)) and not args.json
    if not show:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_job(job: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(job)
        return 0 if job["status"] in ("done", "duplicate", "deleted") else 1
    summary = job.get("summary") or {}
    if job["status"] == "duplicate":
        print(f"{job['id']}: already imported (as {summary.get('duplicate_of')}); nothing added")
    elif job["status"] == "failed":
        print(f"{job['id']}: FAILED: {job.get('error')}", file=sys.stderr)
        return 1
    elif "rows_imported" in summary:  # an aggregate import (Plausible's daily tables)
        print(
            f"{job['id']}: {summary['rows_imported']} daily rows imported on"
            f" {summary.get('days', 0)} days ({summary.get('first_day')} .."
            f" {summary.get('last_day')}), added to answers that include imports"
        )
    else:
        print(
            f"{job['id']}: {summary.get('events_imported', 0)} events imported on"
            f" {summary.get('days', 0)} days ({summary.get('first_day')} .."
            f" {summary.get('last_day')}), {summary.get('rows_read', 0)} rows read"
        )
        for reason, n in (summary.get("skipped") or {}).items():
            print(f"  skipped {n}: {reason}")
    return 0


def _local_import(
    settings: Settings, args: argparse.Namespace, paths: list[Path]
) -> dict[str, Any]:
    from app.imports.csvfiles import expand_zips
    from app.imports.run import (
        content_hash,
        import_copy_limit,
        import_store_settings,
        run_import,
    )
    from app.imports.sources import source_for
    from app.services import open_meta
    from app.storage import import_jobs

    meta = open_meta(settings)
    try:
        site = _site(meta, args.site)
        store = _open_store(settings, meta, import_store_settings(settings.duckdb))
        try:
            with tempfile.TemporaryDirectory(prefix="avocet-import-") as tmp:
                files = expand_zips(paths, Path(tmp))
                job = import_jobs.create_job(
                    meta,
                    site.id,
                    args.source,
                    content_hash(files),
                    [p.name for p in paths],
                    args.overlap,
                )
                source = source_for(args.source, site, {"website": args.website or ""})
                with progress_bar(args, f"importing {args.source}") as progress:
                    done = run_import(
                        meta,
                        store,
                        site,
                        job,
                        source,
                        files,
                        raw_days=settings.raw_retention_days,
                        progress=progress,
                        copy_memory_limit=import_copy_limit(settings.duckdb),
                    )
        finally:
            store.close()
    finally:
        meta.close()
    return done.public()


def _open_store(settings: Settings, meta: MetaStore, duckdb: DuckDBSettings) -> Store:
    """The events store, opened by this process (StoreLocked while a server holds it, and
    always on a ClickHouse server: the control plane's API runs imports there, one at a
    time), with what a stop cut short settled first (app/imports/run.py settle_cut_short)."""
    from app.imports.run import settle_cut_short

    store: Store
    if settings.storage == "clickhouse":
        from app.storage.clickhouse.store import ClickHouseEventStore

        if not settings.clickhouse_dsn.startswith("chdb://"):
            raise StoreLocked("a ClickHouse server: imports go through the control plane")
        store = ClickHouseEventStore.unheld(settings.clickhouse_dsn)
    else:
        store = EventStore(Path(settings.data_dir) / "events.duckdb", duckdb)
    try:
        settle_cut_short(meta, store)
    except BaseException:
        store.close()
        raise
    return store


def _token(args: argparse.Namespace) -> str:
    token = str(args.token or os.environ.get("AVOCET_TOKEN", ""))
    if not token:
        raise InvalidRequest(
            "the running server holds the events file, so this goes through it: pass an API"
            " key with sites:write for the site (or a JWT) with --token or AVOCET_TOKEN"
        )
    return token


def _request(
    settings: Settings, args: argparse.Namespace, method: str, path: str, **kw: Any
) -> Any:
    import httpx

    url = f"{str(args.url or settings.local_url).rstrip('/')}{path}"
    headers = {"Authorization": f"Bearer {_token(args)}"}
    try:
        response = httpx.request(method, url, headers=headers, timeout=None, **kw)
    except httpx.TransportError as exc:
        raise ServerError(
            f"the events file is locked but no server answers at {url} ({exc}); use --url"
        ) from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("error", {})
            message = detail.get("message") if isinstance(detail, dict) else str(detail)
        except ValueError:
            message = None
        raise ServerError(f"the server said {response.status_code}: {message or response.text}")
    return response.json()


def _server_import(
    settings: Settings, args: argparse.Namespace, paths: list[Path]
) -> dict[str, Any]:
    with _open_all(paths) as files:
        data = {"source": args.source}
        if args.overlap:
            data["overlap"] = args.overlap
        if args.website:
            data["website"] = args.website
        job = _request(
            settings, args, "POST", f"/api/v1/sites/{args.site}/imports", data=data, files=files
        )
    with progress_bar(args, f"importing {args.source} (through the server)") as progress:
        while job["status"] in ("queued", "running"):
            progress(job["done_rows"], job["total_rows"])
            time.sleep(0.2)
            job = _request(settings, args, "GET", f"/api/v1/sites/{args.site}/imports/{job['id']}")
        progress(job["done_rows"], job["total_rows"])
    return dict(job)


@contextmanager
def _open_all(paths: list[Path]) -> Iterator[list[tuple[str, tuple[str, Any]]]]:
    handles = [p.open("rb") for p in paths]
    try:
        yield [("file", (p.name, h)) for p, h in zip(paths, handles, strict=True)]
    finally:
        for h in handles:
            h.close()


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    if getattr(args, "from_db", None):  # Umami's database: its tables dumped, then imported
        from app.imports import umami_db

        if args.paths:
            raise InvalidRequest("name the export's files or --from-db, not both")
        with tempfile.TemporaryDirectory(prefix="avocet-umami-") as tmp:
            paths, args.website = umami_db.dump(args.from_db, args.website, Path(tmp))
            return _import_files(settings, args, paths)
    return _import_files(settings, args, [Path(p) for p in args.paths])


def _import_files(settings: Settings, args: argparse.Namespace, paths: list[Path]) -> int:
    for path in paths:
        if not path.exists():
            raise NotFound(f"{path}: no such file or directory")
    if not paths:
        raise InvalidRequest("name the export's files (or --from-db for Umami)")
    try:
        job = _local_import(settings, args, paths)
    except StoreLocked:
        job = _server_import(settings, args, paths)
    return _print_job(job, args.json)


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta
    from app.storage.import_jobs import list_jobs

    meta = open_meta(settings)
    try:
        site_id = _site(meta, args.site).id if args.site else None
        jobs: list[ImportJob] = list_jobs(meta, site_id)
    finally:
        meta.close()
    if args.json:
        print_json([j.public() for j in jobs])
    elif not jobs:
        print("no imports yet")
    for job in [] if args.json else jobs:
        events = (job.summary or {}).get("events_imported", "-")
        print(
            f"{job.id}  {job.site_id}  {job.source:<11} {job.status:<9} {events} events"
            f"  {job.created_at}"
        )
    return 0


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    from app.imports.run import delete_import
    from app.services import open_meta
    from app.storage.import_jobs import get_job

    meta = open_meta(settings)
    try:
        job = get_job(meta, args.job_id)
        site = _site(meta, job.site_id)
        try:
            store = _open_store(settings, meta, settings.duckdb)
        except StoreLocked:
            path = f"/api/v1/sites/{site.id}/imports/{job.id}"
            result: dict[str, Any] = _request(settings, args, "DELETE", path)
        else:
            try:
                removed = delete_import(
                    meta, store, site, job, raw_days=settings.raw_retention_days
                )
            finally:
                store.close()
            result = {"id": job.id, "status": "deleted", "deleted": removed}
    finally:
        meta.close()
    if args.json:
        print_json(result)
    else:
        print(f"{job.id}: deleted ({result['deleted']['events']} raw events)")
    return 0


def register(sub: Any) -> None:
    top = sub.add_parser("import", help="import another tool's export into a site")
    actions = top.add_subparsers(dest="import_command", required=True, metavar="SOURCE|ACTION")
    for name in AVAILABLE:
        cmd = actions.add_parser(name, help=f"import a {name} export")
        cmd.add_argument("paths", nargs="*", help="the export's files (CSV, a zip or a folder)")
        cmd.add_argument("--site", required=True, help="site id or domain")
        cmd.add_argument(
            "--overlap",
            choices=("skip", "keep-both"),
            help="days that already have the site's own data: skip them or add the import",
        )
        if name == "umami":
            cmd.add_argument("--from-db", help="postgresql://... (read only)")
            cmd.add_argument("--website", help="Umami website id (UUID) to import")
        cmd.set_defaults(func=cmd_import, source=name, from_db=None, website=None)
        _common(cmd)
    ls = actions.add_parser("list", help="list imports")
    ls.add_argument("--site", help="only this site's (id or domain)")
    ls.add_argument("--json", action="store_true", help="print one JSON array")
    ls.set_defaults(func=cmd_list)
    rm = actions.add_parser("delete", help="remove exactly what an import added")
    rm.add_argument("job_id")
    rm.set_defaults(func=cmd_delete)
    _common(rm)


def _common(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--url", help="the running server's URL (default: from the config)")
    cmd.add_argument("--token", help="API key or JWT when the server runs (or AVOCET_TOKEN)")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    cmd.add_argument("--progress", action="store_true", help="progress even off a terminal")
