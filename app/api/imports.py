"""Imports over HTTP: POST /api/v1/sites/{id}/imports (multipart: source, overlap, website
and one or more `file` parts) -> 202 with the job; GET .../imports lists them, GET
.../imports/{job} follows one, DELETE .../imports/{job} removes what it added.

The upload is saved to a temporary folder and the job runs on a worker thread, under the
lifecycle jobs' lock (its rollups and pruning must not interleave with theirs); ingestion
waits only for the import's one transaction."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from litestar import delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from app.api.access import AnyRequest, services, site_access
from app.errors import AppError, InvalidRequest
from app.imports import plausible_export
from app.imports.csvfiles import expand_zips
from app.imports.run import OVERLAP_CHOICES, content_hash, delete_import, run_import
from app.imports.sources import AVAILABLE, source_for
from app.query.periods import parse_day
from app.services import Services
from app.storage import import_jobs
from app.storage.meta import Site

log = logging.getLogger("avocet.imports")

# An export of years of pageviews is tens to hundreds of MB; the tracking routes keep
# their own small limit (ingest.max_body_bytes).
MAX_UPLOAD_BYTES = 1 << 30
_running: set[asyncio.Task[None]] = set()


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


async def _save(form: Any, folder: Path) -> list[Path]:
    uploads = [f for f in form.getall("file", []) if isinstance(f, UploadFile)]
    if not uploads:
        raise InvalidRequest("file: attach the export's files as multipart parts named file")
    paths = []
    for i, upload in enumerate(uploads):
        name = Path(upload.filename or f"upload-{i}").name or f"upload-{i}"
        target = folder / f"{i:04d}-{name}"
        with target.open("wb") as out:  # in pieces: an export can be hundreds of MB
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        paths.append(target)
    return paths


async def start_import(svc: Services, site: Site, form: Any) -> import_jobs.ImportJob:
    """Check a multipart import form (source, overlap, website, file parts), save its files
    and start the job on a worker; the queued job (the API and the UI's upload share this)."""
    source = _text(form, "source") or ""
    if source not in AVAILABLE:
        raise InvalidRequest(f"source: one of {', '.join(AVAILABLE)}")
    overlap = _text(form, "overlap")
    if overlap is not None and overlap not in OVERLAP_CHOICES:
        raise InvalidRequest("overlap: skip or keep-both")
    folder = Path(tempfile.mkdtemp(prefix="avocet-import-"))
    try:
        uploaded = await _save(form, folder)
        files = await anyio.to_thread.run_sync(expand_zips, uploaded, folder)
        digest = await anyio.to_thread.run_sync(content_hash, files)
        job = await anyio.to_thread.run_sync(
            import_jobs.create_job,
            svc.meta,
            site.id,
            source,
            digest,
            [p.name[5:] for p in uploaded],
            overlap,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    options = {"website": _text(form, "website") or ""}
    task = asyncio.get_running_loop().create_task(_run(svc, site, job, files, folder, options))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return job


@post(
    "/api/v1/sites/{site_id:str}/imports", status_code=202, request_max_body_size=MAX_UPLOAD_BYTES
)
async def create_import(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    job = await start_import(services(request), site, await request.form())
    return job.public()


async def _run(
    svc: Services,
    site: Site,
    job: import_jobs.ImportJob,
    files: list[Path],
    folder: Path,
    options: dict[str, str],
) -> None:
    try:
        async with svc.jobs.lock:
            await svc.writer.drain()
            await anyio.to_thread.run_sync(
                lambda: run_import(
                    svc.meta,
                    svc.events,
                    site,
                    job,
                    source_for(job.source, site, options),
                    files,
                    raw_days=svc.settings.raw_retention_days,
                )
            )
    except AppError:
        pass  # the job row holds the message
    except Exception:
        log.exception("import %s failed", job.id)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@get("/api/v1/sites/{site_id:str}/imports")
async def list_imports(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:read")
    jobs = await anyio.to_thread.run_sync(import_jobs.list_jobs, services(request).meta, site.id)
    return {"imports": [j.public() for j in jobs]}


@get("/api/v1/sites/{site_id:str}/imports/{job_id:str}")
async def get_import(
    request: AnyRequest, site_id: FromPath[str], job_id: FromPath[str]
) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:read")
    job = await anyio.to_thread.run_sync(
        import_jobs.get_job, services(request).meta, job_id, site.id
    )
    return job.public()


@delete("/api/v1/sites/{site_id:str}/imports/{job_id:str}", status_code=200)
async def remove_import(
    request: AnyRequest, site_id: FromPath[str], job_id: FromPath[str]
) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    svc = services(request)
    job = await anyio.to_thread.run_sync(import_jobs.get_job, svc.meta, job_id, site.id)
    removed = await remove_finished(svc, site, job)
    return {"id": job.id, "status": "deleted", "deleted": removed}


async def remove_finished(svc: Services, site: Site, job: import_jobs.ImportJob) -> dict[str, int]:
    """Delete what a finished import added (the API's DELETE and the UI's share this)."""
    if job.status in ("queued", "running"):
        raise InvalidRequest("the import is still running; delete it once it has finished")
    async with svc.jobs.lock:
        await svc.writer.drain()
        return await anyio.to_thread.run_sync(
            lambda: delete_import(
                svc.meta,
                svc.events,
                site,
                job,
                raw_days=svc.settings.raw_retention_days,
            )
        )


@get("/api/v1/sites/{site_id:str}/export")
async def export_site(
    request: AnyRequest,
    site_id: FromPath[str],
    export_format: Annotated[str, QueryParameter(name="format")] = "plausible",
    date_from: Annotated[str | None, QueryParameter(name="from", required=False)] = None,
    date_to: Annotated[str | None, QueryParameter(name="to", required=False)] = None,
) -> Stream:
    """The site's stats in Plausible's CSV export layout, a zip streamed table by table
    (any date range; all of the site's days when from/to are left out)."""
    site, _, _ = site_access(request, site_id, "stats:read")
    if export_format != "plausible":
        raise InvalidRequest("format: plausible (the raw CSV export is avocet export)")
    first = parse_day(date_from, "from") if date_from else None
    last = parse_day(date_to, "to") if date_to else None
    store = services(request).events
    if first is None or last is None:
        span = await anyio.to_thread.run_sync(plausible_export.data_range, store, site.id)
        if span is None:
            raise InvalidRequest(f"{site.domain} has no data yet: nothing to export")
        first, last = first or span[0], last or span[1]
    if first > last:
        raise InvalidRequest("from: must not be after to")
    today = services(request).clock().astimezone(site.zone).date()
    name = plausible_export.archive_name(site.domain, today)
    return Stream(
        plausible_export.stream_zip(store, site, first, last),  # iterated on worker threads
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


ROUTES = [create_import, list_imports, get_import, remove_import, export_site]
