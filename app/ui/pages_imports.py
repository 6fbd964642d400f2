"""Pages: a site's imports (#22): upload an export (any source of sources.AVAILABLE), follow
its job (the page polls GET /api/v1/sites/{id}/imports/{job}), read each import's summary
and delete one after a confirmation naming exactly what goes. The upload and the delete
run the API's own code (app/api/imports.py), under the same owner/admin rule as the other
settings pages."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.api.imports import MAX_UPLOAD_BYTES, remove_finished, start_import
from app.errors import AppError, NotFound
from app.imports.sources import AVAILABLE
from app.services import Services
from app.storage import import_jobs, imports
from app.storage.import_jobs import ImportJob
from app.storage.meta import Site
from app.ui.pages_sites import EDITORS
from app.ui.web import (
    AnyRequest,
    FormInvalid,
    Viewer,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_site,
)

# What each source's export is, and where the user finds it (the page's source picker).
SOURCES: dict[str, dict[str, str]] = {
    "plausible": {
        "label": "Plausible",
        "what": "daily aggregates",
        "files": "the zip of imported_*.csv files from Site settings → Imports & Exports → Export",
        "accept": ".zip,.csv",
    },
    "umami": {
        "label": "Umami",
        "what": "raw events",
        "files": "its data export: the CSV files of website_event and session (or a zip of them)",
        "accept": ".zip,.csv",
    },
    "goatcounter": {
        "label": "GoatCounter",
        "what": "raw pageviews",
        "files": "the CSV export (version 2) from Settings → Export",
        "accept": ".zip,.csv,.gz",
    },
    "ga4": {
        "label": "Google Analytics 4",
        "what": "raw events",
        "files": "the BigQuery export's daily events_YYYYMMDD tables as Parquet or"
        " newline-delimited JSON (choose several files at once)",
        "accept": ".zip,.parquet,.json,.ndjson,.jsonl,.gz",
    },
}
STATUS_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "done": "Imported",
    "failed": "Failed",
    "duplicate": "Already imported",
    "deleted": "Deleted",
}
_FIELDS = ("source", "file", "overlap")


def source_options() -> list[dict[str, str]]:
    """The sources this server can import, in AVAILABLE's order."""
    return [
        {"name": name, **SOURCES.get(name, {"label": name, "what": "", "files": "", "accept": ""})}
        for name in AVAILABLE
    ]


def _form_error(exc: AppError) -> FormInvalid:
    """start_import's "field: message" next to that field ("file" when it names none)."""
    name, _, text = exc.message.partition(": ")
    if name not in _FIELDS:
        name, text = "file", exc.message
    return FormInvalid({name: text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")})


async def _imports_page(
    request: AnyRequest, viewer: Viewer, site: Site, role: str, **context: Any
) -> Template:
    svc = services(request)
    jobs = await anyio.to_thread.run_sync(import_jobs.list_jobs, svc.meta, site.id)
    context.setdefault("values", {"source": AVAILABLE[0], "overlap": ""})
    return page(
        request,
        "site_imports.html",
        viewer,
        site=site,
        role=role,
        jobs=jobs,
        sources=source_options(),
        labels={name: SOURCES.get(name, {}).get("label", name) for name in AVAILABLE},
        status_labels=STATUS_LABELS,
        current=request.query_params.get("job", ""),
        deleted=request.query_params.get("deleted", ""),
        **context,
    )


@get("/ui/sites/{site_id:str}/imports")
async def imports_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    return await _imports_page(request, viewer, site, role)


@post("/ui/sites/{site_id:str}/imports", request_max_body_size=MAX_UPLOAD_BYTES)
async def upload_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)  # checks the CSRF token first
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    try:
        job = await start_import(services(request), site, await request.form())
    except AppError as exc:
        errors = _form_error(exc).errors
        values = {"source": form.get("source"), "overlap": form.get("overlap")}
        return await _imports_page(request, viewer, site, role, errors=errors, values=values)
    return redirect(f"/ui/sites/{site.id}/imports?job={job.id}#job-{job.id}")


def _job_and_inventory(svc: Services, site: Site, job_id: str) -> tuple[ImportJob, dict[str, Any]]:
    job = import_jobs.get_job(svc.meta, job_id, site.id)
    if job.status == "deleted":
        raise NotFound(f"import {job_id} is already deleted")
    return job, imports.import_inventory(svc.events, site.id, job.seq)


@get("/ui/sites/{site_id:str}/imports/{job_id:str}/delete")
async def delete_page(
    request: AnyRequest, site_id: FromPath[str], job_id: FromPath[str]
) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    job, what = await anyio.to_thread.run_sync(_job_and_inventory, services(request), site, job_id)
    label = SOURCES.get(job.source, {}).get("label", job.source)
    return page(
        request, "import_delete.html", viewer, site=site, role=role, job=job, what=what, label=label
    )


@post("/ui/sites/{site_id:str}/imports/{job_id:str}/delete")
async def delete_form(
    request: AnyRequest, site_id: FromPath[str], job_id: FromPath[str]
) -> Template | Redirect:
    viewer, _ = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    svc = services(request)
    job = await anyio.to_thread.run_sync(import_jobs.get_job, svc.meta, job_id, site.id)
    try:
        await remove_finished(svc, site, job)
    except AppError as exc:
        return await _imports_page(request, viewer, site, role, notice=exc.message)
    return redirect(f"/ui/sites/{site.id}/imports?deleted={job.id}")


ROUTES = [imports_page, upload_form, delete_page, delete_form]
