"""Pages: API keys (create, shown once; list with masked previews; revoke)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.storage.keys import SCOPES, ApiKey, all_keys
from app.ui import actions, flash
from app.ui.actions import attempt
from app.ui.web import AnyRequest, Viewer, page, redirect, services, signed_in, signed_in_form


async def _keys(request: AnyRequest, viewer: Viewer, **context: Any) -> Template:
    svc = services(request)
    keys = await anyio.to_thread.run_sync(all_keys, svc.meta, viewer.user.id)
    sites = await anyio.to_thread.run_sync(actions.owned_sites, svc, viewer.user)
    names = {s.id: s.domain for s in sites}
    context.setdefault("values", {"site": request.query_params.get("site", "")})
    return page(
        request,
        "keys.html",
        viewer,
        keys=list(reversed(keys)),
        sites=sites,
        site_names=names,
        scopes=SCOPES,
        **context,
    )


@get("/ui/keys")
async def keys_page(request: AnyRequest) -> Template:
    viewer = await signed_in(request)
    new = flash.taken(request, viewer)  # a key created by the POST that led here
    if isinstance(new, CreatedKey):
        return await _keys(request, viewer, new_key=new.key, token=new.token)
    return await _keys(request, viewer)


class CreatedKey(msgspec.Struct, frozen=True):
    key: ApiKey
    token: str


@post("/ui/keys")
async def create_key(request: AnyRequest) -> Template | Redirect:
    """The new token is shown once, on the page this redirects to: it is never stored, and
    reloading that page creates no second key."""
    viewer, form = await signed_in_form(request)
    made, errors = await attempt("name", actions.create_key, services(request), viewer.user, form)
    if made is None:
        return await _keys(request, viewer, errors=errors, values=form.values(), checked=form)
    key, token = made
    return redirect(f"/ui/keys?shown={flash.keep(request, viewer, CreatedKey(key, token))}")


@post("/ui/keys/{key_id:str}/revoke")
async def revoke(request: AnyRequest, key_id: FromPath[str]) -> Redirect:
    viewer, _ = await signed_in_form(request)
    await anyio.to_thread.run_sync(actions.revoke_own_key, services(request), viewer.user, key_id)
    return redirect("/ui/keys")


ROUTES = [keys_page, create_key, revoke]
