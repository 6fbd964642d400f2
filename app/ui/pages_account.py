"""Pages: first-run setup, sign in (with an optional two-factor code), sign out, account."""

from __future__ import annotations

import re
from typing import Any

import anyio.to_thread
from litestar import get, post
from litestar.response import Redirect, Template

from app.api.client import client_ip
from app.auth.principal import SESSION_COOKIE
from app.auth.signin import CodeNeeded
from app.auth.twofactor import is_secret, new_secret, provisioning_uri, qr_svg
from app.storage.accounts import (
    User,
    delete_session,
    first_admin,
    recovery_codes_left,
    totp_secret_of,
)
from app.ui import flash, signin
from app.ui.actions import attempt, attempt_async, visible_sites
from app.ui.landing import landing_path
from app.ui.web import (
    PENDING_COOKIE,
    AnyRequest,
    Viewer,
    anonymous_form,
    cookie,
    form_token,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_or_none,
)

_NEXT = re.compile(r"^/ui/[A-Za-z0-9/_-]*$")


def _next(request: AnyRequest) -> str:
    """The page asked for with ?next= (a /ui/ path), or "" for the user's landing page."""
    wanted = request.query_params.get("next", "")
    return wanted if _NEXT.match(wanted) else ""


async def _landing(request: AnyRequest, user: User) -> str:
    return await anyio.to_thread.run_sync(landing_path, services(request), user)


async def _has_users(request: AnyRequest) -> bool:
    return await anyio.to_thread.run_sync(first_admin, services(request).meta) is not None


@get(["/", "/ui"])
async def home(request: AnyRequest) -> Redirect:
    """First run: create the admin; else the sites, or sign in."""
    if not await _has_users(request):
        return redirect("/ui/setup")
    viewer = await anyio.to_thread.run_sync(viewer_or_none, request)
    return redirect(await _landing(request, viewer.user) if viewer else "/ui/login")


@get("/ui/setup")
async def setup_page(request: AnyRequest) -> Template | Redirect:
    if await _has_users(request):
        return redirect("/ui/login")
    token, cookies = form_token(request)
    return page(request, "setup.html", cookies=cookies, csrf_token=token)


@post("/ui/setup")
async def setup(request: AnyRequest) -> Template | Redirect:
    form = await anonymous_form(request)
    svc = services(request)
    user, errors = await attempt_async("email", signin.set_up, svc, form)
    if user is None:
        token = form.get("csrf_token")
        return page(request, "setup.html", csrf_token=token, errors=errors, values=form.values())
    # The admin owns any site added before them (avocet site add): they land on it.
    sites = await anyio.to_thread.run_sync(visible_sites, svc, user)
    return await signed_in_redirect(request, user, "" if sites else "/ui/sites/new")


async def signed_in_redirect(request: AnyRequest, user: User, to: str) -> Redirect:
    """Starts the session and goes to `to`, or to the user's landing page when it is ""."""
    svc = services(request)
    value, ttl = await anyio.to_thread.run_sync(signin.start_session, svc, user)
    return redirect(
        to or await _landing(request, user),
        [
            cookie(request, SESSION_COOKIE, value, ttl, "lax"),
            cookie(request, PENDING_COOKIE, "", 0, "strict"),
        ],
    )


@get("/ui/login")
async def login_page(request: AnyRequest) -> Template | Redirect:
    if not await _has_users(request):
        return redirect("/ui/setup")
    token, cookies = form_token(request)
    return page(request, "login.html", cookies=cookies, csrf_token=token, next=_next(request))


@post("/ui/login")
async def login(request: AnyRequest) -> Template | Redirect:
    form = await anonymous_form(request)
    svc = services(request)
    ip = client_ip(request, svc.trusted_proxies)
    user, errors = await attempt_async("password", signin.check_password, svc, ip, form)
    if user is None:
        return page(
            request,
            "login.html",
            csrf_token=form.get("csrf_token"),
            errors=errors,
            values=form.values(),
            next=_next(request),
        )
    if isinstance(user, CodeNeeded):
        wanted = _next(request)
        to = "/ui/login/code" + (f"?next={wanted}" if wanted else "")
        pending = cookie(request, PENDING_COOKIE, user.pending_token, user.expires_in, "strict")
        return redirect(to, [pending])
    return await signed_in_redirect(request, user, _next(request))


@get("/ui/login/code")
async def code_page(request: AnyRequest) -> Template:
    token, cookies = form_token(request)
    return page(request, "login_code.html", cookies=cookies, csrf_token=token, next=_next(request))


@post("/ui/login/code")
async def login_code(request: AnyRequest) -> Template | Redirect:
    form = await anonymous_form(request)
    svc = services(request)
    pending = request.cookies.get(PENDING_COOKIE, "")
    user, errors = await attempt("code", signin.check_code, svc, pending, form)
    if user is None:
        token = form.get("csrf_token")
        return page(
            request, "login_code.html", csrf_token=token, errors=errors, next=_next(request)
        )
    return await signed_in_redirect(request, user, _next(request))


@post("/ui/logout")
async def logout(request: AnyRequest) -> Redirect:
    viewer, _ = await signed_in_form(request)
    await anyio.to_thread.run_sync(delete_session, services(request).meta, viewer.session_token)
    return redirect("/ui/login", [cookie(request, SESSION_COOKIE, "", 0, "lax")])


async def _account(request: AnyRequest, **context: Any) -> Template:
    viewer = await signed_in(request)
    meta = services(request).meta
    secret = await anyio.to_thread.run_sync(totp_secret_of, meta, viewer.user.id)
    left = await anyio.to_thread.run_sync(recovery_codes_left, meta, viewer.user.id)
    return page(
        request, "account.html", viewer, totp_on=secret is not None, codes_left=left, **context
    )


@get("/ui/account")
async def account(request: AnyRequest) -> Template:
    return await _account(request, done=request.query_params.get("done", ""))


@post("/ui/account/password")
async def change_password(request: AnyRequest) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    svc = services(request)
    _, errors = await attempt_async("current", signin.change_password, svc, viewer, form)
    if errors:
        return await _account(request, errors=errors)
    return redirect("/ui/account?done=password")


@get("/ui/account/totp")
async def totp_page(request: AnyRequest) -> Template:
    """A fresh secret to type into an authenticator app; saved only once a code matches."""
    viewer = await signed_in(request)
    secret = new_secret()
    uri = provisioning_uri(secret, viewer.user.email)
    return page(request, "totp.html", viewer, secret=secret, uri=uri, qr=qr_svg(uri))


@post("/ui/account/totp")
async def enable_totp(request: AnyRequest) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    codes, errors = await attempt("code", signin.enable_totp, services(request), viewer, form)
    if codes is None:
        secret = form.get("secret") if is_secret(form.get("secret")) else new_secret()
        uri = provisioning_uri(secret, viewer.user.email)
        return page(
            request, "totp.html", viewer, secret=secret, uri=uri, qr=qr_svg(uri), errors=errors
        )
    return _show_codes(request, viewer, codes, first=True)


def _show_codes(request: AnyRequest, viewer: Viewer, codes: list[str], *, first: bool) -> Redirect:
    """Recovery codes are shown once, on the page this redirects to (never stored)."""
    shown = flash.keep(request, viewer, {"codes": codes, "first": first})
    return redirect(f"/ui/account/recovery-codes?shown={shown}")


@get("/ui/account/recovery-codes")
async def codes_page(request: AnyRequest) -> Template | Redirect:
    viewer = await signed_in(request)
    found = flash.taken(request, viewer)
    if not isinstance(found, dict):  # shown already (a reload): they are not kept
        return redirect("/ui/account")
    return page(request, "recovery.html", viewer, codes=found["codes"], first=found["first"])


@post("/ui/account/recovery-codes")
async def renew_codes(request: AnyRequest) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    svc = services(request)
    codes, errors = await attempt_async("codes_password", signin.renew_codes, svc, viewer, form)
    if codes is None:
        return await _account(request, errors=errors)
    return _show_codes(request, viewer, codes, first=False)


@post("/ui/account/totp/disable")
async def disable_totp(request: AnyRequest) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    _, errors = await attempt_async(
        "password", signin.disable_totp, services(request), viewer, form
    )
    if errors:
        return await _account(request, errors=errors)
    return redirect("/ui/account?done=totp-off")


ROUTES = [
    home,
    setup_page,
    setup,
    login_page,
    login,
    code_page,
    login_code,
    logout,
    account,
    change_password,
    totp_page,
    enable_totp,
    codes_page,
    renew_codes,
    disable_totp,
]
