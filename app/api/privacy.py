"""Privacy (DSAR) endpoints: /api/v1/sites/{id}/privacy/... and OpenAnalytics'
/v1/projects/{id}/privacy/... (its error envelope comes from the path, app/errors.py).

A user is found by user_key = HMAC(site secret, user_id) (SPEC §1, §5): only server-side
events sent with that user_id can be found; browser events are anonymous."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import anyio.to_thread
from litestar import Request, Response, delete, get
from litestar.params import FromPath

from app.api.access import authenticate, services, site_access
from app.api.collect import NO_STORE
from app.errors import Forbidden, NotFound
from app.ingest.identity import user_key
from app.jobs.privacy import PrivacyJobs
from app.storage import privacy
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]
EXPORT_DAYS = 90
EXPORT_LIMIT = 10_000
NOTE = (
    "Only server-side events sent with this user_id can be found: they carry a keyed"
    " pseudonym of it (never the id itself). Browser events are anonymous (their visitor"
    " hash changes daily and its salt is destroyed), so they can't be found or exported."
    " Excluded: IP addresses (never stored), raw user agents (never stored), property"
    " values (keys only) and replay data."
)


def jobs(request: AnyRequest) -> PrivacyJobs:
    return request.app.state.privacy  # type: ignore[no-any-return]


def _readable_site(request: AnyRequest, site_id: str) -> Site:
    """Export / status: scope privacy:write or stats:read, an owner or admin of the site
    (a viewer sees aggregates, never one person's events)."""
    principal = authenticate(request)
    scope = "privacy:write" if principal.has_scope("privacy:write") else "stats:read"
    if not principal.has_scope(scope):
        raise Forbidden("this API key lacks the privacy:write or stats:read scope")
    site, _, role = site_access(request, site_id, scope)
    if role == "viewer":
        raise Forbidden("viewers can't read one user's data")
    return site


def _event(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["timestamp"] = row["ts"].isoformat(timespec="milliseconds") + "Z"
    out["date"] = row["day"].isoformat()
    del out["ts"], out["day"]
    out["revenue"] = None if row["revenue"] is None else str(row["revenue"].normalize())
    out["property_keys"] = sorted(row["property_keys"] or [])
    return out


def _user(path_value: str) -> str:
    """The user id of a {user_id:path} parameter: ids may hold '/' (sent as is or as %2F),
    the parameter comes with the path's leading '/'."""
    return path_value.removeprefix("/")


async def _export(request: AnyRequest, site_id: str, user_id: str) -> dict[str, Any]:
    site = _readable_site(request, site_id)
    svc = services(request)
    now = svc.clock().astimezone(UTC).replace(tzinfo=None)
    since = now - timedelta(days=EXPORT_DAYS)
    key = user_key(site.secret, user_id)
    rows = await anyio.to_thread.run_sync(
        svc.events.user_events, site.id, key, since, EXPORT_LIMIT + 1
    )
    truncated = len(rows) > EXPORT_LIMIT
    events = [_event(r) for r in rows[:EXPORT_LIMIT]]
    return {
        "site_id": site.id,
        "from": since.isoformat(timespec="seconds") + "Z",
        "to": now.isoformat(timespec="seconds") + "Z",
        "count": len(events),
        "truncated": truncated,
        "limit": EXPORT_LIMIT,
        "events": events,
        "note": NOTE,
    }


async def _delete(request: AnyRequest, site_id: str, user_id: str) -> Response[dict[str, str]]:
    site, principal, _ = site_access(request, site_id, "privacy:write", write=True)
    svc = services(request)
    key = user_key(site.secret, user_id)
    found = await anyio.to_thread.run_sync(
        privacy.create_request, svc.meta, site.id, key, principal.subject
    )
    jobs(request).submit(found.id)
    return Response({"request_id": found.id, "status": "queued"}, status_code=202)


async def _status(request: AnyRequest, site_id: str, request_id: str) -> dict[str, Any]:
    site = _readable_site(request, site_id)
    found = await anyio.to_thread.run_sync(privacy.get_request, services(request).meta, request_id)
    if found is None or found.site_id != site.id:
        raise NotFound("privacy request not found")
    return found.public()


@get("/api/v1/sites/{site_id:str}/privacy/user/{user_id:path}", cache_control=NO_STORE)
async def export_user(
    request: AnyRequest, site_id: FromPath[str], user_id: FromPath[str]
) -> dict[str, Any]:
    """A sanitized export of one server-side user's events (last 90 days, ≤ 10,000)."""
    return await _export(request, site_id, _user(user_id))


@delete("/api/v1/sites/{site_id:str}/privacy/user/{user_id:path}", status_code=202)
async def delete_user(
    request: AnyRequest, site_id: FromPath[str], user_id: FromPath[str]
) -> Response[dict[str, str]]:
    """Queue the deletion of one server-side user's events (raw and rollups)."""
    return await _delete(request, site_id, _user(user_id))


@get("/api/v1/sites/{site_id:str}/privacy/requests/{request_id:str}", cache_control=NO_STORE)
async def request_status(
    request: AnyRequest, site_id: FromPath[str], request_id: FromPath[str]
) -> dict[str, Any]:
    """A deletion request's status: queued, running, done or failed, with counts."""
    return await _status(request, site_id, request_id)


@get("/v1/projects/{project_id:str}/privacy/user/{user_id:path}", cache_control=NO_STORE)
async def project_export_user(
    request: AnyRequest, project_id: FromPath[str], user_id: FromPath[str]
) -> dict[str, Any]:
    """OpenAnalytics: a sanitized per-user export."""
    return await _export(request, project_id, _user(user_id))


@delete("/v1/projects/{project_id:str}/privacy/user/{user_id:path}", status_code=202)
async def project_delete_user(
    request: AnyRequest, project_id: FromPath[str], user_id: FromPath[str]
) -> Response[dict[str, str]]:
    """OpenAnalytics: queue a deletion request (202; nothing is deleted inline)."""
    return await _delete(request, project_id, _user(user_id))


@get("/v1/projects/{project_id:str}/privacy/requests/{request_id:str}", cache_control=NO_STORE)
async def project_request_status(
    request: AnyRequest, project_id: FromPath[str], request_id: FromPath[str]
) -> dict[str, Any]:
    """OpenAnalytics: poll a deletion request."""
    return await _status(request, project_id, request_id)


ROUTES = [
    export_user,
    delete_user,
    request_status,
    project_export_user,
    project_delete_user,
    project_request_status,
]
