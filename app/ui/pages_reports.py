"""Pages: a site's email reports and traffic alerts (who gets the weekly and the monthly
report, a test send; the spike and drop thresholds and who gets those), and the public
unsubscribe page each mail links to (app/jobs/reports.py and alerts.py mail them)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.errors import AppError, NotFound
from app.jobs.reports import build_report, due, render
from app.services import Services
from app.storage.meta import Site
from app.storage.reports import (
    ALERT_KINDS,
    KINDS,
    LABELS,
    LISTS,
    Kind,
    Recipient,
    add_recipient,
    by_token,
    recipients_of,
    remove_recipient,
    set_threshold,
    thresholds_of,
    unsubscribe,
)
from app.ui.actions import attempt, attempt_async, check_email
from app.ui.pages_sites import EDITORS
from app.ui.signin import sentence
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

DONE = {
    "added": "Added: the first report goes out when the next one is due.",
    "added-alert": "Added: the next alert goes to this address too.",
    "removed": "Removed from the list.",
    "tested": "A test report is on its way.",
    "threshold": "Alert saved.",
}


async def _reports_page(
    request: AnyRequest, viewer: Viewer, site: Site, role: str, **context: Any
) -> Template:
    svc = services(request)
    found = await anyio.to_thread.run_sync(recipients_of, svc.meta, site.id)
    lists = {kind: [r for r in found if r.kind == kind] for kind in LISTS}
    thresholds = await anyio.to_thread.run_sync(thresholds_of, svc.meta, site.id)
    context.setdefault("values", {"kind": "weekly"})
    return page(
        request,
        "site_reports.html",
        viewer,
        site=site,
        role=role,
        lists=lists,
        kinds=KINDS,
        alert_kinds=ALERT_KINDS,
        labels=LABELS,
        thresholds=thresholds,
        mail_on=svc.mailer.enabled,
        when={
            "weekly": f"Mondays at 09:00 ({site.timezone}), for Monday to Sunday",
            "monthly": f"the 1st of each month at 09:00 ({site.timezone}), for the month",
        },
        done=DONE.get(request.query_params.get("done", "")),
        **context,
    )


# What a list's mail is called on the unsubscribe page: one, and several.
WHAT = {
    "one": {
        "weekly": "weekly report",
        "monthly": "monthly report",
        "spike": "traffic spike alerts",
        "drop": "traffic drop alerts",
    },
    "many": {
        "weekly": "weekly reports",
        "monthly": "monthly reports",
        "spike": "traffic spike alerts",
        "drop": "traffic drop alerts",
    },
}


@get("/ui/sites/{site_id:str}/reports")
async def reports_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    return await _reports_page(request, viewer, site, role)


def _kind(form: Form) -> str:
    kind = form.get("kind")
    if kind not in LISTS:
        raise FormInvalid({"kind": "Choose a report or an alert."})
    return kind


def add(svc: Services, site: Site, form: Form) -> Recipient:
    kind, email = _kind(form), check_email(form.get("email"))
    try:
        return add_recipient(svc.meta, site.id, kind, email)
    except AppError as exc:  # on the list already, or the list is full
        raise FormInvalid({"email": sentence(exc.message.partition(": ")[2])}) from exc


@post("/ui/sites/{site_id:str}/reports")
async def add_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    added, errors = await attempt("email", add, services(request), site, form)
    if added is None:
        return await _reports_page(request, viewer, site, role, errors=errors, values=form.values())
    done = "added" if added.kind in KINDS else "added-alert"
    return redirect(f"/ui/sites/{site.id}/reports?done={done}")


@post("/ui/sites/{site_id:str}/reports/remove")
async def remove_form(request: AnyRequest, site_id: FromPath[str]) -> Redirect:
    viewer, form = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    svc = services(request)
    await anyio.to_thread.run_sync(
        remove_recipient, svc.meta, site.id, form.get("kind"), form.get("email")
    )
    return redirect(f"/ui/sites/{site.id}/reports?done=removed")


async def send_test(svc: Services, site: Site, form: Form) -> None:
    """The latest report due of the chosen kind, to the chosen address, now (nothing is
    marked sent: the list's own mail still goes out when due)."""
    kind = form.get("kind")
    if kind not in KINDS:
        raise FormInvalid({"email": "Only a report can be sent as a test."})
    recipient = next(
        (
            r
            for r in recipients_of(svc.meta, site.id)
            if r.kind == kind and r.email == form.get("email")
        ),
        None,
    )
    if recipient is None:
        raise FormInvalid({"email": "Add the address to the list first."})
    if not svc.mailer.enabled:
        raise FormInvalid({"email": "Mail is off: set mail.smtp_host and mail.from_address."})
    report_kind: Kind = "monthly" if kind == "monthly" else "weekly"
    period = due(report_kind, svc.clock(), site.zone)
    report = await anyio.to_thread.run_sync(build_report, svc.events, site, report_kind, period)
    subject, text, html = render(report, svc.settings.base_url, recipient.token)
    if not await svc.mailer.send(recipient.email, f"[Test] {subject}", text, html=html):
        raise FormInvalid({"email": "The mail server did not take it (the log says why)."})


@post("/ui/sites/{site_id:str}/reports/test")
async def test_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    _, errors = await attempt_async("email", send_test, services(request), site, form)
    if errors:
        return await _reports_page(request, viewer, site, role, errors=errors)
    return redirect(f"/ui/sites/{site.id}/reports?done=tested")


def save_threshold(svc: Services, site: Site, form: Form) -> None:
    kind, value = form.get("kind"), form.get("threshold").strip()
    if kind not in ALERT_KINDS:
        raise FormInvalid({f"threshold_{kind}": "Choose the spike or the drop alert."})
    name = f"threshold_{kind}"
    if value and not value.isdigit():
        raise FormInvalid({name: "Enter a whole number of visitors, or leave it blank (off)."})
    if value and not 1 <= int(value) <= 1_000_000_000:
        raise FormInvalid({name: "Enter at least 1 visitor, or leave it blank (off)."})
    set_threshold(svc.meta, site.id, kind, int(value) if value else None)


@post("/ui/sites/{site_id:str}/reports/alerts")
async def threshold_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    _, errors = await attempt("threshold", save_threshold, services(request), site, form)
    if errors:
        values = {f"threshold_{form.get('kind')}": form.get("threshold")}
        return await _reports_page(request, viewer, site, role, errors=errors, values=values)
    return redirect(f"/ui/sites/{site.id}/reports?done=threshold#alerts-h")


@get("/reports/unsubscribe/{token:str}")
async def unsubscribe_page(request: AnyRequest, token: FromPath[str]) -> Template:
    """Asks first: mail scanners open links, and must not unsubscribe anyone."""
    svc = services(request)
    found = await anyio.to_thread.run_sync(by_token, svc.meta, token)
    if found is None:
        raise NotFound("This unsubscribe link is not valid any more: the address is off the list.")
    site = svc.sites.by_id(found.site_id)
    domain = site.domain if site else ""
    return page(
        request,
        "unsubscribe.html",
        recipient=found,
        domain=domain,
        one=WHAT["one"],
        many=WHAT["many"],
    )


@post("/reports/unsubscribe/{token:str}")
async def unsubscribe_form(request: AnyRequest, token: FromPath[str]) -> Template:
    """The page's button, and mail clients' one-click unsubscribe (RFC 8058): the token is
    the only credential (no session, no form token)."""
    svc = services(request)
    found = await anyio.to_thread.run_sync(unsubscribe, svc.meta, token)
    site = svc.sites.by_id(found.site_id) if found else None
    return page(
        request,
        "unsubscribe.html",
        recipient=found,
        domain=site.domain if site else "",
        done=True,
        one=WHAT["one"],
        many=WHAT["many"],
    )


ROUTES = [
    reports_page,
    add_form,
    remove_form,
    test_form,
    threshold_form,
    unsubscribe_page,
    unsubscribe_form,
]
