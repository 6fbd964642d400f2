"""Sites, goals and usage: /api/v1/sites[/{id}[/goals]], /api/v1/usage."""

from __future__ import annotations

import time
from typing import Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from app.api.access import authenticate, require_scope, services, site_access
from app.api.site_data import retention_json
from app.auth.limits import month_of, next_month_start
from app.auth.principal import Principal
from app.errors import Forbidden, InvalidRequest, NotFound
from app.services import Services
from app.storage.accounts import ROLES, set_role, site_ids_of
from app.storage.goals import add_goal, delete_goal, goals_of
from app.storage.keys import all_keys
from app.storage.meta import Site
from app.storage.retention import check_retention

AnyRequest = Request[Any, Any, Any]


class SiteForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    domain: str
    name: str | None = None
    timezone: str = "UTC"


class SitePatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    domain: str | None = None
    name: str | None = None
    timezone: str | None = None
    # Days; null: back to the instance's default; retention_days 0: forever.
    raw_retention_days: int | msgspec.UnsetType | None = msgspec.UNSET
    retention_days: int | msgspec.UnsetType | None = msgspec.UNSET


class GoalForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    goal_type: Literal["event", "page"] | None = None
    event_name: str | None = None
    page_path: str | None = None
    display_name: str | None = None
    # A revenue goal's ISO 4217 code (Plausible's goal currency).
    currency: str | None = None


def visible_site_ids(svc: Services, principal: Principal) -> list[str]:
    """The sites a caller may list: its key's site, its owner's sites, or its memberships."""
    key = principal.key
    if key is not None and key.site_id is not None:
        role = svc.auth.role(principal, key.site_id)
        return [key.site_id] if role is not None else []
    if key is not None:
        return site_ids_of(svc.meta, principal.user.id, ("owner",))
    if principal.user.is_admin:
        return [s.id for s in svc.sites.all()]
    return site_ids_of(svc.meta, principal.user.id, ROLES)


@get("/api/v1/sites")
async def list_sites(request: AnyRequest) -> dict[str, object]:
    principal = authenticate(request)
    require_scope(principal, "sites:read")
    svc = services(request)
    ids = await anyio.to_thread.run_sync(visible_site_ids, svc, principal)
    sites = [s for s in map(svc.sites.by_id, ids) if s is not None]
    return {"sites": [s.public() for s in sites]}


def _create_site(svc: Services, form: SiteForm, user_id: str) -> Site:
    site = svc.meta.add_site(form.domain, name=form.name, timezone=form.timezone)
    set_role(svc.meta, site.id, user_id, "owner")
    svc.sites.reload()
    return site


@post("/api/v1/sites", status_code=201)
async def create_site(request: AnyRequest, data: JSONBody[SiteForm]) -> dict[str, object]:
    """A new site owned by the caller (a key bound to one site can't create others)."""
    principal = authenticate(request)
    require_scope(principal, "sites:write")
    if principal.key is not None and principal.key.site_id is not None:
        raise Forbidden("this API key is bound to one site")
    svc = services(request)
    site = await anyio.to_thread.run_sync(_create_site, svc, data, principal.user.id)
    return {"site": {**site.public(), **retention_json(svc, site)}}


@get("/api/v1/sites/{site_id:str}")
async def get_site(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, role = site_access(request, site_id, "sites:read")
    return {"site": {**site.public(), **retention_json(services(request), site), "role": role}}


@patch("/api/v1/sites/{site_id:str}")
async def update_site(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[SitePatch]
) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    svc = services(request)
    changes = msgspec.structs.asdict(data)
    raw = changes.pop("raw_retention_days")
    total = changes.pop("retention_days")
    updated = await anyio.to_thread.run_sync(lambda: _update_site(svc, site, changes, raw, total))
    svc.sites.reload()
    if updated is None:
        raise NotFound("site not found")
    svc.realign(updated)
    return {"site": {**updated.public(), **retention_json(svc, updated)}}


def _update_site(
    svc: Services, site: Site, changes: dict[str, Any], raw: object, total: object
) -> Site | None:
    """Retention first (validated against the effective pair), then the other fields."""
    if raw is not msgspec.UNSET or total is not msgspec.UNSET:
        raw_days = site.raw_retention_days if raw is msgspec.UNSET else raw
        total_days = site.retention_days if total is msgspec.UNSET else total
        assert raw_days is None or isinstance(raw_days, int)
        assert total_days is None or isinstance(total_days, int)
        check_retention(svc.settings, raw_days, total_days)
        svc.meta.set_retention(site.id, raw_days, total_days)
    return svc.meta.update_site(site.id, **changes)


@get("/api/v1/sites/{site_id:str}/goals")
async def list_goals(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:read")
    goals = await anyio.to_thread.run_sync(goals_of, services(request).meta, site.id)
    return {"goals": [g.public() for g in goals]}


def goal_value(form: GoalForm) -> tuple[Literal["event", "page"], str]:
    """(kind, value) of a goal form: exactly one of event_name / page_path."""
    event = (form.event_name or "").strip()
    page = (form.page_path or "").strip()
    if bool(event) == bool(page):
        raise InvalidRequest("event_name: give exactly one of event_name or page_path")
    kind: Literal["event", "page"] = "event" if event else "page"
    if form.goal_type is not None and form.goal_type != kind:
        raise InvalidRequest(f"goal_type: {form.goal_type} goals need {form.goal_type}_name")
    if page and not page.startswith("/"):
        raise InvalidRequest("page_path: must start with '/'")
    value = event or page
    if len(value) > 500:
        raise InvalidRequest(f"{kind}: at most 500 characters")
    return kind, value


@post("/api/v1/sites/{site_id:str}/goals", status_code=201)
async def create_goal(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[GoalForm]
) -> dict[str, object]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    kind, value = goal_value(data)
    name = (data.display_name or "").strip()[:200] or (
        value if kind == "event" else f"Visit {value}"
    )
    meta = services(request).meta
    goal = await anyio.to_thread.run_sync(add_goal, meta, site.id, kind, value, name, data.currency)
    return {"goal": goal.public()}


@delete("/api/v1/sites/{site_id:str}/goals/{goal_id:str}", status_code=200)
async def remove_goal(
    request: AnyRequest, site_id: FromPath[str], goal_id: FromPath[str]
) -> dict[str, bool]:
    site, _, _ = site_access(request, site_id, "sites:write", write=True)
    await anyio.to_thread.run_sync(delete_goal, services(request).meta, site.id, goal_id)
    return {"ok": True}


@get("/api/v1/usage")
async def usage(request: AnyRequest) -> dict[str, object]:
    """Requests this month: the calling key's own, or every key of the signed-in user."""
    principal = authenticate(request)
    svc = services(request)
    now = time.time()
    keys = (
        [principal.key]
        if principal.key
        else await anyio.to_thread.run_sync(all_keys, svc.meta, principal.user.id)
    )
    return {
        "month": month_of(now),
        "reset": next_month_start(now),
        "limit": svc.auth.usage.limit or None,
        "keys": [
            {
                "id": k.id,
                "name": k.name,
                "key_prefix": k.key_prefix,
                "site_id": k.site_id,
                "requests": svc.auth.usage.used(f"key:{k.id}", now),
            }
            for k in keys
        ],
    }


ROUTES = [
    list_sites,
    create_site,
    get_site,
    update_site,
    list_goals,
    create_goal,
    remove_goal,
    usage,
]
