"""argon2id password hashes, computed off the event loop (about 100 ms each)."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import AuthSettings
from app.errors import InvalidRequest

MIN_PASSWORD = 10
MAX_PASSWORD = 1024


def check_password_rules(password: str) -> str:
    """The password, or InvalidRequest when it is too short or absurdly long."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"password: must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(f"password: must be at most {MAX_PASSWORD} characters")
    return password


class Passwords:
    """Hash and verify; an unknown account is verified against a dummy hash so that the
    answer takes as long as for a real one (no account probing by timing)."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_kib,
            parallelism=2,
            type=Type.ID,
        )
        self._dummy: str | None = None

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash("dummy password for timing")
            password_hash = self._dummy
            password = password + "\x00never"
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hash_sync, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(self.verify_sync, password_hash, password)
