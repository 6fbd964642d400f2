"""Sign-in routes: first-run setup, login / logout (session cookie + CSRF token), JWTs.

Login and token are one path (app.auth.signin): with two-factor sign-in on, the password
alone answers `{"two_factor_required": true, "pending_token": …}` and the sign-in completes
by posting `{"pending_token", "code"}` (or `{"email", "password", "code"}` in one go)."""

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
from app.auth.signin import CodeNeeded, complete_sign_in, set_up_first_user, sign_in
from app.errors import Forbidden, InvalidRequest
from app.services import Services
from app.storage.accounts import User, bump_token_version, create_session, delete_session

AnyRequest = Request[Any, Any, Any]


class Credentials(msgspec.Struct, frozen=True):
    email: str
    password: str


class SignIn(msgspec.Struct, frozen=True):
    """Email + password (+ code), or the second step: pending_token + code."""

    email: str | None = None
    password: str | None = None
    code: str | None = None
    pending_token: str | None = None


def same_origin_json(request: AnyRequest) -> None:
    """Sign-in forms can't be posted cross-site (login CSRF): the body must be JSON (which a
    cross-site form can't send without a CORS preflight), and a browser's Origin /
    Sec-Fetch-Site must say the request came from this site."""
    if request.content_type[0] != "application/json":
        raise InvalidRequest("the body must be JSON (Content-Type: application/json)")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("cross-site sign-in requests are refused")
    origin = request.headers.get("origin")
    if origin is None or origin.split("://", 1)[-1] == request.headers.get("host", ""):
        return
    # Behind a proxy that rewrites Host (nginx's default), the public URL names this site.
    public = services(request).settings.public_url
    if not public or origin.rstrip("/") != "/".join(public.split("/")[:3]):
        raise Forbidden("cross-site sign-in requests are refused")


async def _signed_in(request: AnyRequest, data: SignIn) -> User | CodeNeeded:
    svc = services(request)
    if data.pending_token is not None:
        if not data.code:
            raise InvalidRequest("code: required with pending_token")
        return await anyio.to_thread.run_sync(
            complete_sign_in, svc.auth, data.pending_token, data.code
        )
    if data.email is None or data.password is None:
        raise InvalidRequest("email and password are required")
    ip = client_ip(request, svc.trusted_proxies)
    return await sign_in(svc.auth, ip, data.email, data.password, data.code)


def _code_needed(step: CodeNeeded) -> dict[str, object]:
    return {
        "two_factor_required": True,
        "pending_token": step.pending_token,
        "expires_in": step.expires_in,
    }


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
    same_origin_json(request)
    user = await set_up_first_user(services(request).auth, data.email, data.password)
    return {"user": user.public()}


@post("/api/v1/auth/login", status_code=200)
async def login(request: AnyRequest, data: JSONBody[SignIn]) -> Response[dict[str, object]]:
    """Email + password (+ code) -> session cookie; the body carries the CSRF token."""
    same_origin_json(request)
    svc = services(request)
    user = await _signed_in(request, data)
    if isinstance(user, CodeNeeded):
        return Response(_code_needed(user))
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
async def token(request: AnyRequest, data: JSONBody[SignIn]) -> dict[str, object]:
    """Ovyxa's JWT flow: email + password (+ code) -> a short-lived Bearer token."""
    same_origin_json(request)
    svc = services(request)
    user = await _signed_in(request, data)
    if isinstance(user, CodeNeeded):
        return _code_needed(user)
    return {
        "access_token": svc.auth.jwts.issue(user.id, user.token_version),
        "token_type": "Bearer",
        "expires_in": svc.auth.jwts.ttl,
    }


@post("/api/v1/auth/token/revoke", status_code=200)
async def revoke_tokens(request: AnyRequest) -> dict[str, bool]:
    """Revokes every JWT of the caller issued so far (sign-in sessions and keys stay)."""
    principal = authenticate(request)
    if principal.key is not None:
        raise Forbidden("an API key can't revoke its owner's tokens; revoke the key instead")
    await anyio.to_thread.run_sync(bump_token_version, services(request).meta, principal.user.id)
    return {"ok": True}


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


ROUTES = [setup, login, logout, token, revoke_tokens, me]
