"""Segments: /api/v1/sites/{id}/segments, a site's saved filter sets (list: sites:read;
add, delete: sites:write). The dashboard lists them in its filter menu."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import anyio.to_thread
import msgspec
from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from app.api.access import services, site_access
from app.api.stats import AnyRequest
from app.errors import InvalidRequest
from app.query.model import COLUMNS
from app.storage.segments import add_segment, delete_segment, segments_of

MAX_FILTERS = 20
_KEYS = {*COLUMNS, "goal", "event"}


class SegmentForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    filters: str  # "country=DE&source=Google" ("source!=Google": is not; "page~=blog": contains)


def normalize_filters(query: str) -> str:
    """The filters as stored: known keys only (an `!` or `~` suffix for is not / contains),
    each with a value; InvalidRequest naming what is wrong."""
    kept = []
    for key, value in parse_qsl(query.strip().lstrip("?"), keep_blank_values=True):
        name = key.removesuffix("!").removesuffix("~")
        if not (name in _KEYS or (name.startswith("prop:") and len(name) > 5)):
            raise InvalidRequest(f"filters: {key[:40]!r} is not a filter")
        if not value.strip("| "):
            raise InvalidRequest(f"filters: {key[:40]!r} has no value")
        kept.append((key, value))
    if not kept:
        raise InvalidRequest("filters: a segment needs at least one filter")
    if len(kept) > MAX_FILTERS:
        raise InvalidRequest(f"filters: at most {MAX_FILTERS}")
    return urlencode(kept, safe="/:*|!~")


@get("/api/v1/sites/{site_id:str}/segments")
async def list_segments(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:read")
    found = await anyio.to_thread.run_sync(segments_of, services(request).meta, site.id)
    return {"segments": [s.public() for s in found]}


@post("/api/v1/sites/{site_id:str}/segments", status_code=201)
async def create_segment(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[SegmentForm]
) -> dict[str, object]:
    site, principal, _ = site_access(request, site_id, "sites:write", write=True)
    query = normalize_filters(data.filters)
    segment = await anyio.to_thread.run_sync(
        add_segment, services(request).meta, site.id, data.name, query, principal.user.id
    )
    return {"segment": segment.public()}


@delete("/api/v1/sites/{site_id:str}/segments/{segment_id:str}", status_code=200)
async def remove_segment(
    request: AnyRequest, site_id: FromPath[str], segment_id: FromPath[str]
) -> dict[str, bool]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    await anyio.to_thread.run_sync(delete_segment, services(request).meta, site.id, segment_id)
    return {"ok": True}


ROUTES = [list_segments, create_segment, remove_segment]
