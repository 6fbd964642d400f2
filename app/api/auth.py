"""Sign-in routes: first-run setup, login / logout (session cookie + CSRF token), JWTs."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from app.api.access import authenticate, services
from app.api.client import client_ip, is_https
from app.auth.principal import SESSION_COOKIE
from app.auth.signin import set_up_first_user, sign_in
from app.errors import Forbidden
from app.services import Services
from app.storage.accounts import create_session, delete_session

AnyRequest = Request[Any, Any, Any]


class Credentials(msgspec.Struct, frozen=True):
    email: str
    password: str


def _secure(request: AnyRequest, svc: Services) -> bool:
    mode = svc.settings.auth.cookie_secure
    if mode != "auto":
        return mode == "always"
    return is_https(request, svc.trusted_proxies)


def _session_cookie(request: AnyRequest, svc: Services, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=_secure(request, svc),
        samesite="lax",
    )


@post("/api/v1/auth/setup", status_code=201)
async def setup(request: AnyRequest, data: JSONBody[Credentials]) -> dict[str, object]:
    """First run only: the first user becomes the instance admin."""
    user = await set_up_first_user(services(request).auth, data.email, data.password)
    return {"user": user.public()}


@post("/api/v1/auth/login", status_code=200)
async def login(request: AnyRequest, data: JSONBody[Credentials]) -> Response[dict[str, object]]:
    """Email + password -> session cookie; the body carries the CSRF token for writes."""
    svc = services(request)
    user = await sign_in(
        svc.auth, client_ip(request, svc.trusted_proxies), data.email, data.password
    )
    ttl = svc.settings.auth.session_ttl_hours * 3600
    token, session = await anyio.to_thread.run_sync(create_session, svc.meta, user.id, ttl)
    return Response(
        {"user": user.public(), "csrf_token": session.csrf_token, "expires_at": session.expires_at},
        cookies=[_session_cookie(request, svc, token, ttl)],
    )


@post("/api/v1/auth/logout", status_code=200)
async def logout(request: AnyRequest) -> Response[dict[str, bool]]:
    """Ends the signed-in session (needs X-CSRF-Token like every cookie-authenticated write)."""
    svc = services(request)
    principal = authenticate(request)
    if principal.kind != "session":
        raise Forbidden("logout ends a signed-in session; bearer tokens expire on their own")
    await anyio.to_thread.run_sync(delete_session, svc.meta, request.cookies[SESSION_COOKIE])
    return Response({"ok": True}, cookies=[_session_cookie(request, svc, "", 0)])


@post("/api/v1/auth/token", status_code=200)
async def token(request: AnyRequest, data: JSONBody[Credentials]) -> dict[str, object]:
    """Ovyxa's JWT flow: email + password -> a short-lived Bearer token."""
    svc = services(request)
    user = await sign_in(
        svc.auth, client_ip(request, svc.trusted_proxies), data.email, data.password
    )
    return {
        "access_token": svc.auth.jwts.issue(user.id),
        "token_type": "Bearer",
        "expires_in": svc.auth.jwts.ttl,
    }


@get("/api/v1/auth/me")
async def me(request: AnyRequest) -> dict[str, object]:
    """The caller (and, for a session, its CSRF token, e.g. after a page reload)."""
    principal = authenticate(request)
    return {
        "user": principal.user.public(),
        "via": principal.kind,
        "csrf_token": principal.csrf_token,
        "key": principal.key.public() if principal.key else None,
    }


ROUTES = [setup, login, logout, token, me]
