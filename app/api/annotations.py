"""Annotations: /api/v1/sites/{id}/annotations (add, delete: sites:write) and
/api/v1/stats/annotations (the notes of a period, for the dashboard's graph: stats:read;
not through share links, the notes are the team's)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from app.api.access import services, site_access
from app.api.stats import AnyRequest, From, Q, To, context, period_of
from app.storage.annotations import add_annotation, annotations_of, delete_annotation


class AnnotationForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    date: str  # the site's local day, YYYY-MM-DD
    text: str


@post("/api/v1/sites/{site_id:str}/annotations", status_code=201)
async def create_annotation(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[AnnotationForm]
) -> dict[str, object]:
    site, principal, _ = site_access(request, site_id, "sites:write", write=True)
    note = await anyio.to_thread.run_sync(
        add_annotation, services(request).meta, site.id, data.date, data.text, principal.user.id
    )
    return {"annotation": note.public()}


@delete("/api/v1/sites/{site_id:str}/annotations/{annotation_id:str}", status_code=200)
async def remove_annotation(
    request: AnyRequest, site_id: FromPath[str], annotation_id: FromPath[str]
) -> dict[str, bool]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    meta = services(request).meta
    await anyio.to_thread.run_sync(delete_annotation, meta, site.id, annotation_id)
    return {"ok": True}


@get("/api/v1/stats/annotations")
async def period_annotations(
    request: AnyRequest,
    site_id: Q = None,
    period: Q = None,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """The site's notes of the period's days, oldest first."""
    ctx = await context(request, site_id)
    found = await anyio.to_thread.run_sync(
        annotations_of, ctx.svc.meta, ctx.site.id, ctx.period.first_day, ctx.period.last_day
    )
    return {"period": period_of(ctx.period), "results": [a.public() for a in found]}


ROUTES = [create_annotation, remove_annotation, period_annotations]
