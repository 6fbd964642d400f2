"""Share-link credentials: the short-lived API token a shared dashboard sends, and the cookie
that remembers a link's password was given.

Both are HS256 JWTs signed with a key derived from the instance's JWT secret for this use
only, and carry their own audience: a share token is never a user's JWT (and a user's JWT
never a share token), whichever check reads it. Neither is trusted alone: the link is read
from SQLite on every use, so revoking or expiring it stops every token already handed out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from pathlib import Path

import jwt
import msgspec

from app.auth.tokens import JWT_ISSUER, load_jwt_secret
from app.config import Settings

API_AUDIENCE = "avocet:share"
UNLOCK_AUDIENCE = "avocet:share-unlock"
# The dashboard page mints one when it is rendered; it polls realtime with it all day.
API_TTL_SECONDS = 12 * 3600
# A password, once given, is remembered this long (per link, in a cookie scoped to it).
UNLOCK_TTL_SECONDS = 7 * 24 * 3600


class ShareClaims(msgspec.Struct, frozen=True):
    share_id: str
    site_id: str


def password_mark(password_hash: str | None) -> str:
    """A short fingerprint of the link's password hash: a new password voids old cookies."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


class ShareTokens:
    """Issue and check share API tokens and unlock cookies."""

    def __init__(self, jwt_secret: bytes) -> None:
        self._key = hmac.new(jwt_secret, b"avocet share links", hashlib.sha256).digest()

    @classmethod
    def of(cls, settings: Settings) -> ShareTokens:
        return cls(load_jwt_secret(settings.auth, Path(settings.data_dir)))

    def _encode(self, claims: Mapping[str, object], audience: str, ttl: int, now: float) -> str:
        issued = int(now)
        body = {**claims, "aud": audience, "iss": JWT_ISSUER, "iat": issued, "exp": issued + ttl}
        return jwt.encode(body, self._key, algorithm="HS256")

    def _decode(self, token: str, audience: str) -> dict[str, object] | None:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=audience,
                issuer=JWT_ISSUER,
                options={"require": ["sub", "exp", "iat", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims

    def issue_api(self, share_id: str, site_id: str, now: float | None = None) -> str:
        claims = {"sub": share_id, "site": site_id}
        return self._encode(
            claims, API_AUDIENCE, API_TTL_SECONDS, time.time() if now is None else now
        )

    def check_api(self, token: str) -> ShareClaims | None:
        """The link and site a valid, unexpired share API token names, else None."""
        claims = self._decode(token, API_AUDIENCE)
        if claims is None:
            return None
        share_id, site_id = claims.get("sub"), claims.get("site")
        if not isinstance(share_id, str) or not isinstance(site_id, str):
            return None
        return ShareClaims(share_id, site_id)

    def issue_unlock(self, share_id: str, password_hash: str | None) -> str:
        claims = {"sub": share_id, "pw": password_mark(password_hash)}
        return self._encode(claims, UNLOCK_AUDIENCE, UNLOCK_TTL_SECONDS, time.time())

    def check_unlock(self, token: str, share_id: str, password_hash: str | None) -> bool:
        """The cookie says this link's current password was given, and is unexpired."""
        claims = self._decode(token, UNLOCK_AUDIENCE)
        return (
            claims is not None
            and claims.get("sub") == share_id
            and hmac.compare_digest(str(claims.get("pw", "")), password_mark(password_hash))
        )
