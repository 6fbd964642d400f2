"""API key tokens (av_live_<12 hex>_<32 base62>) and short-lived HS256 JWTs."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import string
import time
from collections.abc import Callable
from pathlib import Path

import jwt

from app.config import AuthSettings

_BASE62 = string.digits + string.ascii_letters
TOKEN = re.compile(r"^(av_live_[0-9a-f]{12})_[0-9A-Za-z]{32}$")
JWT_ISSUER = "avocet"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_api_token() -> tuple[str, str, bytes]:
    """(token, key_prefix, SHA-256 digest of the token). Only the last two are stored."""
    prefix = f"av_live_{secrets.token_hex(6)}"
    token = f"{prefix}_{''.join(secrets.choice(_BASE62) for _ in range(32))}"
    return token, prefix, digest(token)


def split_api_token(token: str) -> str | None:
    """The key_prefix of a well-formed token, else None."""
    match = TOKEN.match(token)
    return match.group(1) if match else None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and len(token) < 4096


def load_jwt_secret(settings: AuthSettings, data_dir: Path) -> bytes:
    """The configured secret, else data_dir/jwt.secret, created (0600) on first use."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    return load_key_file(data_dir / "jwt.secret", lambda: secrets.token_hex(32).encode())


def load_key_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """A secret kept in a file of the data dir, created (0600) with make() on first use."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
    return secret


class Jwts:
    """Issue and check the Bearer JWTs of /api/v1/auth/token."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl = ttl_seconds

    def issue(self, user_id: str, version: int = 0, now: float | None = None) -> str:
        """A token for the user at their current token_version (bumping it revokes this)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": user_id,
            "iat": issued,
            "exp": issued + self.ttl,
            "iss": JWT_ISSUER,
            "ver": version,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def subject(self, token: str) -> tuple[str, int] | None:
        """(user id, token version) of a valid, unexpired token, else None."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=JWT_ISSUER,
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.PyJWTError:
            return None
        sub, version = claims.get("sub"), claims.get("ver", 0)
        if not isinstance(sub, str) or not isinstance(version, int):
            return None
        return sub, version
