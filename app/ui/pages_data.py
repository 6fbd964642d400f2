"""Pages: a site's data under its owner's control (#21): "Data" (retention, reset stats) and
"Exclusions" (rules, and the hits they dropped). The same checks and jobs as the sites API
(app/api/site_data.py, app/storage/retention.py, app/storage/exclusions.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import anyio.to_thread
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.api.site_data import (
    COUNT_DAYS,
    excluded_counts,
    queue_reset,
    reset_range,
    retention_json,
)
from app.errors import AppError
from app.services import Services
from app.storage import privacy
from app.storage.exclusions import KINDS, add_exclusion, delete_exclusion, exclusions_of
from app.storage.meta import Site
from app.storage.purge import events_inventory
from app.storage.retention import check_retention
from app.ui.actions import attempt
from app.ui.pages_sites import EDITORS
from app.ui.web import (
    AnyRequest,
    Form,
    FormInvalid,
    Viewer,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_site,
)

RULE_LABELS = {
    "ip": "IP address or range",
    "hostname": "Allowed hostname",
    "page": "Page",
    "country": "Country",
}


def _days(form: Form, name: str) -> int | None:
    """A retention field: blank = the instance's default, else whole days."""
    value = form.get(name)
    if not value:
        return None
    if not value.isdigit():
        raise FormInvalid({name: "Enter a whole number of days, or leave it blank."})
    return int(value)


def _field_error(exc: AppError, fields: tuple[str, ...]) -> FormInvalid:
    """A storage check's "field: message" as the form's error next to that field."""
    name, _, text = exc.message.partition(": ")
    if name not in fields:
        name, text = fields[0], exc.message
    return FormInvalid({name: text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")})


def save_retention(svc: Services, site: Site, form: Form) -> Site:
    fields = ("raw_retention_days", "retention_days")
    errors: dict[str, str] = {}
    values: dict[str, int | None] = {}
    for name in fields:
        try:
            values[name] = _days(form, name)
        except FormInvalid as exc:
            errors.update(exc.errors)
    if errors:
        raise FormInvalid(errors)
    raw, total = values["raw_retention_days"], values["retention_days"]
    try:
        check_retention(svc.settings, raw, total)
    except AppError as exc:
        raise _field_error(exc, fields) from exc
    svc.meta.set_retention(site.id, raw, total)
    svc.sites.reload()
    found = svc.sites.by_id(site.id)
    assert found is not None
    return found


def _reset_days(form: Form) -> tuple[str | None, str | None]:
    if form.get("scope") != "range":
        return None, None
    errors = {k: "Pick a day." for k in ("from", "to") if not form.get(k)}
    if errors:
        raise FormInvalid(errors)
    try:
        return reset_range(form.get("from"), form.get("to"))
    except AppError as exc:
        raise _field_error(exc, ("from", "to")) from exc


def _reset_inventory(svc: Services, site: Site, first: str | None, last: str | None) -> Any:
    return events_inventory(
        svc.events,
        site.id,
        date.fromisoformat(first) if first else None,
        date.fromisoformat(last) if last else None,
    )


async def _data_page(
    request: AnyRequest, viewer: Viewer, site: Site, role: str, **context: Any
) -> Template:
    svc = services(request)
    keep = await anyio.to_thread.run_sync(retention_json, svc, site)
    first, last = context.pop("reset_days", (None, None))
    what = await anyio.to_thread.run_sync(_reset_inventory, svc, site, first, last)
    rid = request.query_params.get("request", "")
    queued = await anyio.to_thread.run_sync(privacy.get_request, svc.meta, rid) if rid else None
    if queued is not None and queued.site_id != site.id:
        queued = None
    context.setdefault(
        "values",
        {
            "raw_retention_days": str(site.raw_retention_days or ""),
            "retention_days": "" if site.retention_days is None else str(site.retention_days),
            "scope": "all",
        },
    )
    return page(
        request,
        "site_data.html",
        viewer,
        site=site,
        role=role,
        keep=keep,
        settings=svc.settings,
        what=what,
        reset_span=(first, last),
        queued=queued,
        done=request.query_params.get("done", ""),
        **context,
    )


@get("/ui/sites/{site_id:str}/data")
async def data_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    return await _data_page(request, viewer, site, role)


@post("/ui/sites/{site_id:str}/data/retention")
async def save_retention_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    saved, errors = await attempt(
        "raw_retention_days", save_retention, services(request), site, form
    )
    if saved is None:
        values = {**form.values(), "scope": "all"}
        return await _data_page(request, viewer, site, role, errors=errors, values=values)
    return redirect(f"/ui/sites/{site.id}/data?done=retention")


def reset_stats(svc: Services, site: Site, user_id: str, form: Form) -> str:
    """Queue the reset once the domain is typed; returns the request id."""
    first, last = _reset_days(form)
    if form.get("confirm").lower() != site.domain:
        raise FormInvalid({"confirm": f"Type {site.domain} to confirm."})
    return queue_reset(svc, site, user_id, first, last).id


@post("/ui/sites/{site_id:str}/data/reset")
async def reset_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, ("owner",))
    svc = services(request)
    rid, errors = await attempt("confirm", reset_stats, svc, site, viewer.user.id, form)
    if rid is None:
        try:  # the confirmation names exactly what the chosen range deletes
            span = _reset_days(form)
        except FormInvalid:
            span = (None, None)
        values = {**form.values(), "confirm": ""}
        return await _data_page(
            request, viewer, site, role, errors=errors, values=values, reset_days=span
        )
    request.app.state.privacy.submit(rid)
    return redirect(f"/ui/sites/{site.id}/data?done=reset&request={rid}")


async def _exclusions_page(
    request: AnyRequest, viewer: Viewer, site: Site, role: str, **context: Any
) -> Template:
    svc = services(request)
    rules = await anyio.to_thread.run_sync(exclusions_of, svc.meta, site.id)
    counts = await anyio.to_thread.run_sync(excluded_counts, svc, site)
    context.setdefault("values", {"type": "ip"})
    return page(
        request,
        "site_exclusions.html",
        viewer,
        site=site,
        role=role,
        rules=rules,
        counts=counts,
        count_days=COUNT_DAYS,
        kinds=KINDS,
        labels=RULE_LABELS,
        **context,
    )


@get("/ui/sites/{site_id:str}/exclusions")
async def exclusions_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    return await _exclusions_page(request, viewer, site, role)


def add_rule(svc: Services, site: Site, form: Form) -> str:
    kind = form.get("type")
    if kind not in KINDS:
        raise FormInvalid({"type": "Choose what to exclude."})
    try:
        rule = add_exclusion(svc.meta, site.id, kind, form.get("value"))
    except AppError as exc:
        raise _field_error(exc, ("value", "type")) from exc
    svc.sites.reload()  # applies to the next hit
    return rule.id


@post("/ui/sites/{site_id:str}/exclusions")
async def add_rule_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    rid, errors = await attempt("value", add_rule, services(request), site, form)
    if rid is None:
        return await _exclusions_page(
            request, viewer, site, role, errors=errors, values=form.values()
        )
    return redirect(f"/ui/sites/{site.id}/exclusions")


def remove_rule(svc: Services, site: Site, rule_id: str) -> None:
    delete_exclusion(svc.meta, site.id, rule_id)
    svc.sites.reload()


@post("/ui/sites/{site_id:str}/exclusions/{rule_id:str}/delete")
async def remove_rule_form(
    request: AnyRequest, site_id: FromPath[str], rule_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    await anyio.to_thread.run_sync(remove_rule, services(request), site, rule_id)
    return redirect(f"/ui/sites/{site.id}/exclusions")


ROUTES = [
    data_page,
    save_retention_form,
    reset_form,
    exclusions_page,
    add_rule_form,
    remove_rule_form,
]
