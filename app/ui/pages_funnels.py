"""The Goals page's funnels: define one (a name and 2 to 8 goals, in order), delete one.
The same checks as the funnels API (app/storage/funnels.py); the dashboard shows them."""

from __future__ import annotations

import anyio.to_thread
from litestar import post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.errors import AppError
from app.services import Services
from app.storage.funnels import MAX_STEPS, Funnel, add_funnel, delete_funnel
from app.storage.meta import Site
from app.ui.actions import attempt
from app.ui.pages_sites import EDITORS, goals_view
from app.ui.signin import sentence
from app.ui.web import (
    AnyRequest,
    Form,
    FormInvalid,
    redirect,
    services,
    signed_in_form,
    viewer_site,
)


def add(svc: Services, site: Site, form: Form) -> Funnel:
    steps = [form.get(f"step{i}") for i in range(1, MAX_STEPS + 1)]
    try:
        return add_funnel(svc.meta, site.id, form.get("name"), [s for s in steps if s])
    except AppError as exc:  # "field: message" -> the form's field
        field, _, text = exc.message.partition(": ")
        raise FormInvalid(
            {field if field in ("name", "steps") else "name": sentence(text)}
        ) from exc


@post("/ui/sites/{site_id:str}/funnels")
async def add_form(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    made, errors = await attempt("name", add, services(request), site, form)
    if made is None:
        return await goals_view(
            request, viewer, site_id, funnel_errors=errors, funnel_values=form.values()
        )
    return redirect(f"/ui/sites/{site.id}/goals#funnels-h")


@post("/ui/sites/{site_id:str}/funnels/{funnel_id:str}/delete")
async def remove_form(
    request: AnyRequest, site_id: FromPath[str], funnel_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    await anyio.to_thread.run_sync(delete_funnel, services(request).meta, site.id, funnel_id)
    return redirect(f"/ui/sites/{site.id}/goals#funnels-h")


ROUTES = [add_form, remove_form]
