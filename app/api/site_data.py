"""A site's data under its owner's control: deletion and reset (background jobs with a
status), retention, exclusions. /api/v1/sites/{id}/..., /api/v1/deletions/{id}."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody

from app.api.access import authenticate, require_scope, services, site_access
from app.api.collect import NO_STORE
from app.errors import Forbidden, InvalidRequest, NotFound
from app.jobs.privacy import PrivacyJobs
from app.services import Services
from app.storage import privacy
from app.storage.exclusions import add_exclusion, delete_exclusion, exclusions_of
from app.storage.meta import Site
from app.storage.purge import events_inventory, site_inventory
from app.storage.retention import retained_from

AnyRequest = Request[Any, Any, Any]
COUNT_DAYS = 30  # exclusion counters shown: the last 30 site-local days


class ResetForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Both unset: everything; else the site-local days from..to (inclusive)."""

    date_from: str | None = msgspec.field(default=None, name="from")
    date_to: str | None = msgspec.field(default=None, name="to")


class ExclusionForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    value: str


def _jobs(request: AnyRequest) -> PrivacyJobs:
    return request.app.state.privacy  # type: ignore[no-any-return]


def deletion_inventory(svc: Services, site: Site) -> dict[str, int]:
    """Everything a site deletion removes, counted now (blocking)."""
    return {**events_inventory(svc.events, site.id), **site_inventory(svc.meta, site.id)}


def excluded_counts(svc: Services, site: Site, days: int = COUNT_DAYS) -> dict[str, int]:
    """Hits each kind of rule dropped over the site's last `days` local days (blocking)."""
    today = svc.clock().astimezone(site.zone).date()
    counts = {"ip": 0, "hostname": 0, "page": 0, "country": 0}
    counts.update(svc.events.excluded_hits(site.id, today - timedelta(days=days - 1)))
    return counts


def queue_site_deletion(svc: Services, site: Site, user_id: str) -> str:
    """Mark the site deleted (it is gone for every reader and stops collecting from this
    commit) and queue the job that deletes its data; returns the request id (blocking: the
    caller then submits it to the running jobs)."""
    found = privacy.create_request(svc.meta, site.id, None, f"user:{user_id}", kind="site")
    svc.sites.reload()
    return found.id


def _day(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidRequest(f"{field}: use a date like 2026-01-31") from exc


def reset_range(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    """(first, last) site-local days of a reset; InvalidRequest when reversed or malformed."""
    first, last = _day(date_from, "from"), _day(date_to, "to")
    if first and last and first > last:
        raise InvalidRequest("from: must not be after to")
    return first, last


def queue_reset(
    svc: Services, site: Site, user_id: str, first: str | None, last: str | None
) -> privacy.PrivacyRequest:
    """Queue a reset of the site's stats (blocking; the caller submits it, as above)."""
    return privacy.create_request(
        svc.meta, site.id, None, f"user:{user_id}", kind="reset", first_day=first, last_day=last
    )


def _owner_site(request: AnyRequest, site_id: str) -> tuple[Site, str]:
    site, principal, role = site_access(request, site_id, "sites:write", write=True)
    if role != "owner":
        raise Forbidden("only the site owner can delete its data")
    return site, principal.user.id


@delete("/api/v1/sites/{site_id:str}", status_code=202)
async def delete_site(request: AnyRequest, site_id: FromPath[str]) -> dict[str, Any]:
    """Owner only: the site is gone at once; a background job deletes its data (status:
    GET /api/v1/deletions/{request_id})."""
    site, user_id = _owner_site(request, site_id)
    svc = services(request)
    what = await anyio.to_thread.run_sync(deletion_inventory, svc, site)
    rid = await anyio.to_thread.run_sync(queue_site_deletion, svc, site, user_id)
    _jobs(request).submit(rid)
    return {"request_id": rid, "type": "delete_site", "status": "queued", "deletes": what}


@post("/api/v1/sites/{site_id:str}/reset", status_code=202)
async def reset_stats(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[ResetForm]
) -> dict[str, Any]:
    """Owner only: delete the site's stats of a range of its days (or all), keeping the site
    and its settings; events that arrive after the request stay."""
    site, user_id = _owner_site(request, site_id)
    first, last = reset_range(data.date_from, data.date_to)
    svc = services(request)
    found = await anyio.to_thread.run_sync(queue_reset, svc, site, user_id, first, last)
    _jobs(request).submit(found.id)
    return found.public()


@get("/api/v1/deletions/{request_id:str}", cache_control=NO_STORE)
async def deletion_status(request: AnyRequest, request_id: FromPath[str]) -> dict[str, Any]:
    """A site deletion's or reset's status, for whoever asked for it (and instance admins);
    a done site deletion no longer names its site."""
    principal = authenticate(request)
    require_scope(principal, "sites:read")
    found = await anyio.to_thread.run_sync(privacy.get_request, services(request).meta, request_id)
    mine = found is not None and found.requested_by == f"user:{principal.user.id}"
    if found is None or found.kind == "user" or not (mine or principal.user.is_admin):
        raise NotFound("deletion request not found")
    return found.public()


@get("/api/v1/sites/{site_id:str}/exclusions", cache_control=NO_STORE)
async def list_exclusions(request: AnyRequest, site_id: FromPath[str]) -> dict[str, Any]:
    """The site's exclusion rules, and the hits each kind dropped in the last 30 days."""
    site, _, _ = site_access(request, site_id, "sites:read")
    svc = services(request)
    rules = await anyio.to_thread.run_sync(exclusions_of, svc.meta, site.id)
    counts = await anyio.to_thread.run_sync(excluded_counts, svc, site)
    return {
        "exclusions": [r.public() for r in rules],
        "excluded_hits": counts,
        "excluded_hits_days": COUNT_DAYS,
    }


def _add_rule(svc: Services, site: Site, kind: str, value: str) -> dict[str, Any]:
    rule = add_exclusion(svc.meta, site.id, kind, value)
    svc.sites.reload()  # applies to the next hit
    return rule.public()


def _remove_rule(svc: Services, site: Site, rule_id: str) -> None:
    delete_exclusion(svc.meta, site.id, rule_id)
    svc.sites.reload()


@post("/api/v1/sites/{site_id:str}/exclusions", status_code=201)
async def create_exclusion(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[ExclusionForm]
) -> dict[str, Any]:
    """A rule: {"type": "ip" | "hostname" | "page" | "country", "value": ...}. Applies to
    hits from now on; stored data is never rewritten."""
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    svc = services(request)
    rule = await anyio.to_thread.run_sync(_add_rule, svc, site, data.type, data.value)
    return {"exclusion": rule}


@delete("/api/v1/sites/{site_id:str}/exclusions/{rule_id:str}", status_code=200)
async def remove_exclusion(
    request: AnyRequest, site_id: FromPath[str], rule_id: FromPath[str]
) -> dict[str, bool]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    await anyio.to_thread.run_sync(_remove_rule, services(request), site, rule_id)
    return {"ok": True}


def retention_json(svc: Services, site: Site) -> dict[str, Any]:
    """The site's retention as the sites API shows it (effective days; 0: forever)."""
    keep = svc.retention(site)
    today = svc.clock().astimezone(site.zone).date()
    first = retained_from(site, svc.settings, today)
    return {
        "raw_retention_days": keep.raw_days,
        "retention_days": keep.total_days,
        "retention_is_default": site.raw_retention_days is None and site.retention_days is None,
        "retained_from": first.isoformat() if first else None,
    }


ROUTES = [
    delete_site,
    reset_stats,
    deletion_status,
    list_exclusions,
    create_exclusion,
    remove_exclusion,
]
