"""API key management (Aizen's shapes): signed-in site owners only, never a bearer token."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody

from app.api.access import authenticate, services, site_access
from app.auth.keys import create_api_key, parse_expiry, parse_scopes
from app.auth.principal import Principal
from app.errors import Forbidden
from app.storage.keys import keys_of_site, revoke_key
from app.storage.meta import Site

AnyRequest = Request[Any, Any, Any]


class KeyForm(msgspec.Struct, frozen=True, rename={"expires_at": "expiresAt"}):
    name: str | None = None
    expires_at: str | None = None
    scopes: list[str] | None = None
    scope: str | None = None


def owner_site(request: AnyRequest, site_id: str) -> tuple[Site, Principal]:
    """The site, when the caller is its owner signed in with a session (403 otherwise)."""
    if authenticate(request).kind != "session":
        raise Forbidden("API keys are managed from a signed-in session, not with a token")
    site, principal, role = site_access(request, site_id, "sites:write")
    if role != "owner":
        raise Forbidden("only the site owner can manage its API keys")
    return site, principal


@get("/api/sites/{site_id:str}/api-keys")
async def list_keys(request: AnyRequest, site_id: FromPath[str]) -> dict[str, object]:
    site, _ = owner_site(request, site_id)
    keys = await anyio.to_thread.run_sync(keys_of_site, services(request).meta, site.id)
    return {"keys": [k.public() for k in keys]}


@post("/api/sites/{site_id:str}/api-keys", status_code=201)
async def create_key(
    request: AnyRequest, site_id: FromPath[str], data: JSONBody[KeyForm]
) -> dict[str, object]:
    """A new key for this site (default scope stats:read); the token is shown only here."""
    site, principal = owner_site(request, site_id)
    scopes = parse_scopes(data.scopes or [data.scope or "stats:read"])
    expires = parse_expiry(data.expires_at, time.time())
    key, token = await anyio.to_thread.run_sync(
        lambda: create_api_key(
            services(request).meta,
            user_id=principal.user.id,
            site_id=site.id,
            scopes=scopes,
            name=data.name,
            expires_at=expires,
        )
    )
    return {"key": key.public(), "token": token}


@delete("/api/sites/{site_id:str}/api-keys/{key_id:str}", status_code=200)
async def revoke(
    request: AnyRequest, site_id: FromPath[str], key_id: FromPath[str]
) -> dict[str, bool]:
    site, _ = owner_site(request, site_id)
    await anyio.to_thread.run_sync(revoke_key, services(request).meta, key_id, site.id)
    return {"ok": True}


ROUTES = [list_keys, create_key, revoke]
