"""Who a request comes from: an API key, a JWT or a sign-in session, and what it may see."""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Literal

import msgspec

from app.auth.limits import RateLimits, Usage
from app.auth.passwords import Passwords
from app.auth.tokens import Jwts, load_jwt_secret, looks_like_jwt, split_api_token
from app.auth.tokens import digest as token_digest
from app.auth.twofactor import is_secret, load_secret_box, pending_key
from app.config import Settings
from app.errors import Forbidden, Unauthorized
from app.storage.accounts import (
    Role,
    User,
    effective_role,
    reseal_totp_secret,
    role_of,
    session_by_token,
    totp_secrets,
    user_by_id,
)
from app.storage.keys import ApiKey, key_by_prefix
from app.storage.meta import MetaStore

SESSION_COOKIE = "avocet_session"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["key", "jwt", "session"]
    user: User
    key: ApiKey | None = None
    csrf_token: str | None = None

    @property
    def subject(self) -> str:
        """The bucket of rate limits and usage: the key, or the signed-in user."""
        return f"key:{self.key.id}" if self.key else f"user:{self.user.id}"

    def has_scope(self, scope: str) -> bool:
        """Keys carry scopes; a user acting as themselves (JWT, session) has them all."""
        return self.key is None or scope in self.key.scopes


class Authenticator:
    """Checks credentials against SQLite (point lookups by indexed key: microseconds)."""

    def __init__(self, settings: Settings, meta: MetaStore) -> None:
        self.meta = meta
        self.settings = settings
        self.passwords = Passwords(settings.auth)
        secret = load_jwt_secret(settings.auth, Path(settings.data_dir))
        self.jwts = Jwts(secret, settings.auth.jwt_ttl_seconds)
        # Signs the short-lived "password right, code next" token of a two-step sign-in.
        self.pending_key = pending_key(secret)
        self.totp_box = load_secret_box(Path(settings.data_dir))
        self._seal_legacy_secrets()
        self.limits = RateLimits(settings.limits, settings.auth)
        self.usage = Usage(meta, settings.limits.monthly_requests)

    def _seal_legacy_secrets(self) -> None:
        """Older versions stored TOTP secrets in clear: seal them (once, at start)."""
        for user_id, stored in totp_secrets(self.meta):
            if is_secret(stored):
                reseal_totp_secret(self.meta, user_id, self.totp_box.seal(stored))

    def from_bearer(self, token: str) -> Principal:
        """An API key or a JWT, or Unauthorized naming what is wrong."""
        token = token.strip()
        if not token:
            raise Unauthorized("missing bearer token")
        prefix = split_api_token(token)
        if prefix is not None:
            return self._from_key(prefix, token)
        if looks_like_jwt(token):
            subject = self.jwts.subject(token)
            user = user_by_id(self.meta, subject[0]) if subject else None
            if user is None or subject is None or subject[1] != user.token_version:
                raise Unauthorized("invalid, expired or revoked token")
            return Principal(kind="jwt", user=user)
        raise Unauthorized("malformed token")

    def _from_key(self, prefix: str, token: str) -> Principal:
        key = key_by_prefix(self.meta, prefix)
        if key is None or not hmac.compare_digest(key.digest, token_digest(token)):
            raise Unauthorized("invalid API key")
        if key.revoked_at is not None:
            raise Unauthorized("this API key has been revoked")
        if not key.usable(time.time()):
            raise Unauthorized("this API key has expired")
        user = user_by_id(self.meta, key.created_by)
        if user is None:
            raise Unauthorized("invalid API key")
        return Principal(kind="key", user=user, key=key)

    def from_session(self, cookie: str) -> Principal:
        session = session_by_token(self.meta, cookie)
        user = user_by_id(self.meta, session.user_id) if session else None
        if session is None or user is None:
            raise Unauthorized("the session has expired; sign in again")
        return Principal(kind="session", user=user, csrf_token=session.csrf_token)

    def role(self, principal: Principal, site_id: str) -> Role | None:
        """The caller's role on a site; instance admins act as admins on every site."""
        return effective_role(role_of(self.meta, site_id, principal.user.id), principal.user)

    def check_key_covers(self, principal: Principal, site_id: str, role: Role) -> None:
        """Forbidden when the caller can see the site but its key doesn't cover it: a key is
        bound to one site, or to all the sites its creator owns."""
        key = principal.key
        if key is None:
            return
        if key.site_id is not None and key.site_id != site_id:
            raise Forbidden("this API key is not valid for this site")
        if key.site_id is None and role != "owner":
            raise Forbidden("this API key covers only its owner's sites")
