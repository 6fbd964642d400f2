"""What every settings-UI handler needs: the signed-in user, CSRF-checked forms, pages.

Signed-in forms echo the session's CSRF token in a hidden `csrf_token` field. Forms shown
before sign-in (setup, sign-in, the two-factor code) use a double-submit cookie instead:
a random value in an HttpOnly, SameSite=Strict cookie that the hidden field must repeat.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from app.api.client import is_https
from app.auth.principal import SESSION_COOKIE
from app.errors import AppError, Forbidden, NotFound, Unauthorized
from app.services import Services
from app.storage.accounts import Role, User, effective_role, role_of
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parents[2] / "static" / "ui"
FORM_COOKIE = "avocet_form"
PENDING_COOKIE = "avocet_2fa"
MAX_FIELD = 4096


class SignInRequired(Unauthorized):
    """A UI page asked for without a (valid) session: the error handler redirects."""


class Viewer(msgspec.Struct, frozen=True):
    """The signed-in user of a UI request."""

    user: User
    csrf_token: str
    session_token: str


class Form:
    """Submitted fields as stripped strings (files and over-long values are ignored)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str) -> str:
        values = self.fields.get(name) or [""]
        return values[0].strip()

    def raw(self, name: str) -> str:
        """Unstripped (passwords)."""
        values = self.fields.get(name) or [""]
        return values[0]

    def getall(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, []) if v.strip()]

    def values(self) -> dict[str, str]:
        """The first value of every field but secrets, to fill a form shown again."""
        hidden = {"password", "password2", "current", "new", "new2", "csrf_token", "code"}
        return {k: self.get(k) for k in self.fields if k not in hidden}


def services(request: AnyRequest) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def secure_cookies(request: AnyRequest) -> bool:
    svc = services(request)
    mode = svc.settings.auth.cookie_secure
    if mode != "auto":
        return mode == "always"
    return is_https(request, svc.trusted_proxies)


def cookie(request: AnyRequest, key: str, value: str, max_age: int, samesite: str) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure_cookies(request),
        samesite=samesite,  # type: ignore[arg-type]
    )


def viewer_or_none(request: AnyRequest) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    svc = services(request)
    try:
        principal = svc.auth.from_session(token)
    except Unauthorized:
        return None
    return Viewer(principal.user, principal.csrf_token or "", token)


async def signed_in(request: AnyRequest) -> Viewer:
    """The signed-in user, or SignInRequired (a redirect to the sign-in page)."""
    found = await anyio.to_thread.run_sync(viewer_or_none, request)
    if found is None:
        raise SignInRequired("sign in to continue")
    return found


async def _fields(request: AnyRequest) -> dict[str, list[str]]:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and len(value) <= MAX_FIELD and len(key) <= 100:
            fields.setdefault(key, []).append(value)
    return fields


def _same(sent: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


async def signed_in_form(request: AnyRequest) -> tuple[Viewer, Form]:
    """The signed-in user and their submitted form; Forbidden on a missing / wrong token."""
    viewer = await signed_in(request)
    form = Form(await _fields(request))
    if not _same(form.get("csrf_token"), viewer.csrf_token):
        raise Forbidden("The form's security token is missing or out of date; reload the page.")
    return viewer, form


async def anonymous_form(request: AnyRequest) -> Form:
    """A form posted before sign-in, checked against the double-submit cookie."""
    form = Form(await _fields(request))
    if not _same(form.get("csrf_token"), request.cookies.get(FORM_COOKIE, "")):
        raise Forbidden("The form's security token is missing or out of date; reload the page.")
    return form


def form_token(request: AnyRequest) -> tuple[str, list[Cookie]]:
    """The double-submit token of an anonymous form page (and the cookie when it is new)."""
    current = request.cookies.get(FORM_COOKIE, "")
    if 20 <= len(current) <= 100:
        return current, []
    token = secrets.token_urlsafe(24)
    return token, [cookie(request, FORM_COOKIE, token, 3600 * 24, "strict")]


def page(
    request: AnyRequest,
    template: str,
    viewer: Viewer | None = None,
    *,
    cookies: list[Cookie] | None = None,
    **context: object,
) -> Template:
    """A page; 400 when it shows a form's errors again."""
    errors = context.setdefault("errors", {})
    cookies = cookies or []
    context.setdefault("values", {})
    context.setdefault("csrf_token", viewer.csrf_token if viewer else "")
    return Template(
        template_name=template,
        context={**context, "user": viewer.user if viewer else None, "path": request.url.path},
        cookies=cookies,
        status_code=400 if errors else 200,
        headers={"Cache-Control": "no-store"},
    )


def redirect(path: str, cookies: list[Cookie] | None = None) -> Redirect:
    """303 See Other: after a POST, the browser GETs the next page."""
    return Redirect(path, status_code=303, cookies=cookies or [])


def site_role(svc: Services, viewer: Viewer, site_id: str) -> tuple[Site, Role]:
    """The site and the viewer's role on it; NotFound when they can't see it."""
    site = svc.sites.by_id(site_id)
    role = effective_role(role_of(svc.meta, site_id, viewer.user.id), viewer.user)
    if site is None or role is None:
        raise NotFound("site not found")
    return site, role


async def viewer_site(
    request: AnyRequest, viewer: Viewer, site_id: str, need: tuple[Role, ...] = ()
) -> tuple[Site, Role]:
    """The site for this viewer (Forbidden when their role isn't one of `need`)."""
    site, role = await anyio.to_thread.run_sync(site_role, services(request), viewer, site_id)
    if need and role not in need:
        raise Forbidden(f"Your role on {site.domain} ({role}) can't do this.")
    return site, role


class FormInvalid(AppError):
    """Field -> message; the handler shows the form again with them."""

    status = 400
    code = "invalid_request"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
