"""Plausible's Sites API under the Plausible base path: {base}/api/v1/sites[...] with its
parameters (query string, JSON, form or multipart bodies, as `curl -F` sends them), shapes
and words (Plausible's external_sites_controller.ex). Keys need the sites:write scope (a
sites:read key may list and read). Plausible's teams have no equivalent here: sites belong
to the user who added them, so `team_id` and /teams answer that plainly."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, post, put, route
from litestar.enums import HttpMethod
from litestar.params import FromPath

from app.api.access import authenticate, has_credentials, require_scope, services, site_access
from app.api.site_data import queue_site_deletion
from app.api.sites import visible_site_ids
from app.errors import (
    JSON_ERRORS,
    AppError,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from app.query.plausible_v1 import MISSING_KEY
from app.services import Services
from app.storage.accounts import set_role
from app.storage.goals import Goal, add_goal, delete_goal, goals_of
from app.storage.meta import Site
from app.storage.props import add_prop, delete_prop, props_of
from app.storage.shares import ShareLink, add_share_link, share_links_of
from app.storage.tracker_config import config_of, update_config

AnyRequest = Request[Any, Any, Any]

INVALID_KEY = (
    "Invalid API key. Please make sure you're using a valid API key with access to the"
    " resource you've requested."
)
NO_TEAMS = (
    "Avocet has no teams: a site belongs to the user who added it, and an API key reads or"
    " changes the sites of its user. Leave out team_id."
)
SITE_MISSING = "Site could not be found"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
# Plausible's tracker_script_configuration. Stored and acted on by the site's pa-<id>.js
# script (app/api/plausible_root.py): hash routing, 404 pages, the installation type. The
# others report what our one tracker does whatever is asked (it always tracks outbound
# links, downloads, tagged events and revenue; it has no form-submission or pageview-prop
# tracking).
STORED_SWITCHES = {"installation_type": None, "track_404_pages": False, "hash_based_routing": False}
FIXED_SWITCHES = {
    "outbound_links": True,
    "file_downloads": True,
    "revenue_tracking": True,
    "tagged_events": True,
    "form_submissions": False,
    "pageview_props": False,
}
INSTALLATION_TYPES = (None, "manual", "wordpress", "gtm", "npm")
CONFIG = "tracker_script_configuration"


def check_configuration(raw: Any) -> dict[str, Any]:
    """The stored switches a tracker_script_configuration sets; its errors as Plausible's
    changeset names them ("tracker_script_configuration.<field>: is invalid")."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{CONFIG}: is invalid")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "installation_type":
            valid = value in INSTALLATION_TYPES
        elif key in STORED_SWITCHES or key in FIXED_SWITCHES:
            valid = isinstance(value, bool)
        else:
            continue  # unknown fields are ignored, as Ecto's cast ignores them
        if not valid:
            raise InvalidRequest(f"{CONFIG}.{key}: is invalid")
        if key in STORED_SWITCHES:
            changes[key] = value
    return changes


def tracker_configuration(svc: Services, site: Site) -> dict[str, Any]:
    stored = config_of(svc.meta, site.id)
    switches = {k: stored.get(k, default) for k, default in STORED_SWITCHES.items()}
    return {"id": f"pa-{site.id}", **switches, **FIXED_SWITCHES}


class NotProvided(AppError):
    status = 501
    code = "not_implemented"


GUESTS = (
    "Avocet's Plausible Sites API has no guests endpoints: invite people to a site from its"
    " settings page (Members), where they get viewer or admin roles"
)


class Caller(msgspec.Struct, frozen=True):
    user_id: str
    bound_site: str | None


def caller(request: AnyRequest, scope: str) -> Caller:
    """Plausible's refusals: 401 without a key, 401 for a key that can't do this."""
    if not has_credentials(request):
        raise Unauthorized(MISSING_KEY)
    try:
        principal = authenticate(request)
        require_scope(principal, scope)
    except (Unauthorized, Forbidden) as exc:
        raise Unauthorized(INVALID_KEY) from exc
    except RateLimited as exc:
        limit = services(request).settings.limits.key_per_minute
        raise RateLimited(
            f"Too many API requests. Your API key is limited to {limit} requests per minute.",
            exc.retry_after,
        ) from exc
    key = principal.key
    return Caller(principal.user.id, key.site_id if key else None)


async def params_of(request: AnyRequest) -> dict[str, Any]:
    """Query parameters, then the body's (JSON object, urlencoded or multipart form)."""
    found: dict[str, Any] = {k: request.query_params.get(k) for k in request.query_params}
    if request.method in ("GET", "HEAD", "DELETE") and not request.headers.get("content-length"):
        return found
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        found.update({k: form.get(k) for k in form})
        return found
    raw = await request.body()
    if raw.strip():
        try:
            body = msgspec.json.decode(raw)
        except JSON_ERRORS as exc:
            raise InvalidRequest("Invalid request body: not valid JSON") from exc
        if not isinstance(body, dict):
            raise InvalidRequest("Invalid request body: expected a JSON object")
        found.update(body)
    return found


def _text(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Parameter `{key}` must be a string")
    return value


def _required(params: dict[str, Any], key: str, doing: str) -> str:
    value = _text(params, key)
    if value is None:
        raise InvalidRequest(f"Parameter `{key}` is required to {doing}")
    return value


def _no_teams(params: dict[str, Any]) -> None:
    if params.get("team_id") not in (None, ""):
        raise InvalidRequest(NO_TEAMS)


def find_site(request: AnyRequest, site_id: str, scope: str, *, owner: bool = False) -> Site:
    """The site named by domain (or our id) that the caller may use: 404 "Site could not be
    found" otherwise, as Plausible answers for a site the key can't reach."""
    svc = services(request)
    site = (svc.sites.by_domain(site_id) if "." in site_id else None) or svc.sites.by_id(site_id)
    if site is None:
        raise NotFound(SITE_MISSING)
    try:
        found, _, role = site_access(request, site.id, scope, write=scope == "sites:write")
    except (Forbidden, NotFound) as exc:
        raise NotFound(SITE_MISSING) from exc
    if owner and role != "owner":
        raise NotFound(SITE_MISSING)
    return found


def site_json(svc: Services, site: Site) -> dict[str, Any]:
    return {
        "domain": site.domain,
        "timezone": site.timezone,
        "custom_properties": props_of(svc.meta, site.id),
        CONFIG: tracker_configuration(svc, site),
    }


def goal_json(site: Site, goal: Goal) -> dict[str, Any]:
    return {
        "domain": site.domain,
        "id": goal.id,
        "display_name": goal.name,
        "goal_type": goal.kind,
        "event_name": goal.value if goal.kind == "event" else None,
        "page_path": goal.value if goal.kind == "page" else None,
    }


def _page(items: list[Any], params: dict[str, Any], key: Any) -> tuple[list[Any], dict[str, Any]]:
    """Plausible's cursor pagination (after / before / limit) over a stable order."""
    text = _text(params, "limit")
    limit = DEFAULT_LIMIT
    if text is not None:
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise InvalidRequest(f"Parameter `limit` must be between 1 and {MAX_LIMIT}")
        limit = int(text)
    after, before = _text(params, "after"), _text(params, "before")
    keys = [str(key(i)) for i in items]
    start, end = 0, len(items)
    if after:
        start = keys.index(after) + 1 if after in keys else len(items)
    if before:
        end = keys.index(before) if before in keys else 0
        start = max(start, end - limit)
    chosen = items[start : min(end, start + limit)]
    meta = {
        "after": keys[start + len(chosen) - 1] if chosen and start + len(chosen) < end else None,
        "before": keys[start] if chosen and start > 0 else None,
        "limit": limit,
    }
    return chosen, meta


@get("/api/v1/sites")
async def list_sites(request: AnyRequest) -> dict[str, Any]:
    caller(request, "sites:read")
    params = await params_of(request)
    _no_teams(params)
    svc = services(request)
    principal = authenticate(request)  # the caller's, checked above (cached per request)
    ids = await anyio.to_thread.run_sync(visible_site_ids, svc, principal)
    sites = [s for s in map(svc.sites.by_id, ids) if s is not None]
    chosen, meta = _page(sites, params, lambda s: s.id)
    return {
        "sites": [{"domain": s.domain, "timezone": s.timezone} for s in chosen],
        "meta": meta,
    }


@get("/api/v1/sites/teams")
async def list_teams(request: AnyRequest) -> dict[str, Any]:
    caller(request, "sites:read")
    raise NotFound(NO_TEAMS)


def _create(svc: Services, domain: str, timezone: str, user_id: str) -> Site:
    site = svc.meta.add_site(domain, timezone=timezone)
    set_role(svc.meta, site.id, user_id, "owner")
    svc.sites.reload()
    return site


@post("/api/v1/sites", status_code=200)
async def create_site(request: AnyRequest) -> dict[str, Any]:
    """Plausible answers 200 with the site; errors name the field ("domain: ...")."""
    who = caller(request, "sites:write")
    params = await params_of(request)
    _no_teams(params)
    if who.bound_site is not None:
        raise Unauthorized(INVALID_KEY)
    domain = _text(params, "domain")
    if not domain or not domain.strip():
        raise InvalidRequest("domain: can't be blank")
    timezone = _text(params, "timezone") or "Etc/UTC"
    config = params.get(CONFIG)
    changes = check_configuration(config) if config is not None else {}
    svc = services(request)
    if svc.sites.by_domain(domain) is not None:
        raise InvalidRequest(
            "domain: This domain has already been taken. Perhaps one of your team members"
            " registered it? If that's not the case, please contact the instance's admin"
        )
    try:
        site = await anyio.to_thread.run_sync(_create, svc, domain, timezone, who.user_id)
    except AppError as exc:
        field = "timezone" if "timezone" in exc.message.lower() else "domain"
        raise InvalidRequest(f"{field}: {exc.message}") from exc
    if changes:
        await anyio.to_thread.run_sync(update_config, svc.meta, site.id, changes)
    return await anyio.to_thread.run_sync(site_json, svc, site)


@get("/api/v1/sites/{site_id:str}")
async def get_site(request: AnyRequest, site_id: FromPath[str]) -> dict[str, Any]:
    caller(request, "sites:read")
    site = find_site(request, site_id, "sites:read")
    return await anyio.to_thread.run_sync(site_json, services(request), site)


@put("/api/v1/sites/{site_id:str}")
async def update_site(request: AnyRequest, site_id: FromPath[str]) -> dict[str, Any]:
    """A new domain and/or tracker switches (the ones not named keep their value). The old
    domain stops answering at once (Plausible keeps it for a while: see the README)."""
    caller(request, "sites:write")
    params = await params_of(request)
    domain = _text(params, "domain")
    config = params.get(CONFIG)
    if domain is None and config is None:
        raise InvalidRequest(
            "Payload must contain at least one of the parameters 'domain',"
            " 'tracker_script_configuration'"
        )
    changes = check_configuration(config) if config is not None else {}
    site = find_site(request, site_id, "sites:write")
    svc = services(request)
    updated: Site | None = site
    if domain is not None:
        try:
            updated = await anyio.to_thread.run_sync(
                lambda: svc.meta.update_site(site.id, domain=domain)
            )
        except AppError as exc:
            raise InvalidRequest(f"domain: {exc.message}") from exc
        svc.sites.reload()
    if updated is None:
        raise NotFound(SITE_MISSING)
    if changes:
        await anyio.to_thread.run_sync(update_config, svc.meta, site.id, changes)
    return await anyio.to_thread.run_sync(site_json, svc, updated)


@delete("/api/v1/sites/{site_id:str}", status_code=200)
async def delete_site(request: AnyRequest, site_id: FromPath[str]) -> dict[str, bool]:
    """Owners only; the site is gone at once, its data deleted by a background job."""
    who = caller(request, "sites:write")
    site = find_site(request, site_id, "sites:write", owner=True)
    svc = services(request)
    rid = await anyio.to_thread.run_sync(queue_site_deletion, svc, site, who.user_id)
    request.app.state.privacy.submit(rid)
    return {"deleted": True}


def _share(svc: Services, site: Site, name: str, user_id: str) -> ShareLink:
    for link in share_links_of(svc.meta, site.id):
        if link.name == name:
            return link
    return add_share_link(svc.meta, site_id=site.id, name=name, created_by=user_id)


@put("/api/v1/sites/shared-links")
async def shared_link(request: AnyRequest) -> dict[str, str]:
    """Find or create a share link by name: {"name", "url"}."""
    who = caller(request, "sites:write")
    params = await params_of(request)
    site_id = _required(params, "site_id", "create a shared link")
    name = _required(params, "name", "create a shared link")
    site = find_site(request, site_id, "sites:write")
    svc = services(request)
    link = await anyio.to_thread.run_sync(_share, svc, site, name, who.user_id)
    return {"name": link.name, "url": f"{svc.settings.base_url}/share/{link.token}"}


@get("/api/v1/sites/goals")
async def list_goals(request: AnyRequest) -> dict[str, Any]:
    caller(request, "sites:read")
    params = await params_of(request)
    site = find_site(request, _required(params, "site_id", "list goals"), "sites:read")
    goals = await anyio.to_thread.run_sync(goals_of, services(request).meta, site.id)
    chosen, meta = _page(goals, params, lambda g: g.id)
    return {
        "goals": [{k: v for k, v in goal_json(site, g).items() if k != "domain"} for g in chosen],
        "meta": meta,
    }


def _find_or_add_goal(svc: Services, site: Site, kind: str, value: str, name: str) -> Goal:
    for goal in goals_of(svc.meta, site.id):
        if goal.kind == kind and goal.value == value:
            return goal
    return add_goal(svc.meta, site.id, "event" if kind == "event" else "page", value, name)


@put("/api/v1/sites/goals")
async def find_or_create_goal(request: AnyRequest) -> dict[str, Any]:
    """goal_type "event" with event_name, or "page" with page_path; the goal as stored."""
    caller(request, "sites:write")
    params = await params_of(request)
    site_id = _required(params, "site_id", "create a goal")
    kind = _required(params, "goal_type", "create a goal")
    site = find_site(request, site_id, "sites:write")
    if kind not in ("event", "page"):
        raise InvalidRequest("goal_type: must be event or page")
    field = "event_name" if kind == "event" else "page_path"
    value = (_text(params, field) or "").strip()
    if not value:
        raise InvalidRequest(f"{field}: can't be blank")
    if kind == "page" and not value.startswith("/"):
        raise InvalidRequest("page_path: must start with '/'")
    if len(value) > 500:
        raise InvalidRequest(f"{field}: should be at most 500 character(s)")
    name = (_text(params, "display_name") or "").strip()[:200] or (
        value if kind == "event" else f"Visit {value}"
    )
    svc = services(request)
    goal = await anyio.to_thread.run_sync(_find_or_add_goal, svc, site, kind, value, name)
    return goal_json(site, goal)


@delete("/api/v1/sites/goals/{goal_id:str}", status_code=200)
async def remove_goal(request: AnyRequest, goal_id: FromPath[str]) -> dict[str, bool]:
    caller(request, "sites:write")
    params = await params_of(request)
    site = find_site(request, _required(params, "site_id", "delete a goal"), "sites:write")
    try:
        await anyio.to_thread.run_sync(delete_goal, services(request).meta, site.id, goal_id)
    except NotFound as exc:
        raise NotFound("Goal could not be found") from exc
    return {"deleted": True}


@get("/api/v1/sites/custom-props")
async def list_props(request: AnyRequest) -> dict[str, Any]:
    caller(request, "sites:read")
    params = await params_of(request)
    site = find_site(request, _required(params, "site_id", "list custom properties"), "sites:read")
    props = await anyio.to_thread.run_sync(props_of, services(request).meta, site.id)
    return {"custom_properties": [{"property": p} for p in props]}


@put("/api/v1/sites/custom-props")
async def create_prop(request: AnyRequest) -> dict[str, bool]:
    """Idempotent: an existing property answers created: true too."""
    caller(request, "sites:write")
    params = await params_of(request)
    site_id = _required(params, "site_id", "create a custom property")
    prop = _required(params, "property", "create a custom property").strip()
    site = find_site(request, site_id, "sites:write")
    if not prop or len(prop.encode()) > 300:
        raise InvalidRequest("property: must be 1 to 300 bytes")
    try:
        await anyio.to_thread.run_sync(add_prop, services(request).meta, site.id, prop)
    except sqlite3.Error as exc:  # pragma: no cover - a locked or broken store
        raise InvalidRequest(f"property: {exc}") from exc
    return {"created": True}


@delete("/api/v1/sites/custom-props/{prop:str}", status_code=200)
async def remove_prop(request: AnyRequest, prop: FromPath[str]) -> dict[str, bool]:
    caller(request, "sites:write")
    params = await params_of(request)
    site = find_site(
        request, _required(params, "site_id", "delete a custom property"), "sites:write"
    )
    await anyio.to_thread.run_sync(delete_prop, services(request).meta, site.id, prop)
    return {"deleted": True}


@route(
    ["/api/v1/sites/guests", "/api/v1/sites/guests/{email:str}"],
    http_method=[HttpMethod.GET, HttpMethod.PUT, HttpMethod.DELETE],
)
async def guests(request: AnyRequest) -> None:
    caller(request, "sites:read")
    raise NotProvided(GUESTS)


ROUTES = [
    guests,
    list_sites,
    list_teams,
    create_site,
    list_goals,
    find_or_create_goal,
    remove_goal,
    list_props,
    create_prop,
    remove_prop,
    shared_link,
    get_site,
    update_site,
    delete_site,
]
