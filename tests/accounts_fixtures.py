"""A running server with users, sites, keys and sign-in sessions, built on real files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest

from app.auth.keys import create_api_key
from app.auth.passwords import Passwords
from app.auth.tokens import new_api_token
from app.config import AuthSettings, LimitSettings, Settings
from app.storage.accounts import Role, User, create_user, set_role
from app.storage.keys import insert_key
from tests.conftest import CHROME_UA, LiveServer, free_port, start_live_server, stop_live_server

PASSWORD = "correct horse battery staple"
# Cheap argon2 so tests can make many users; production cost is the config default.
FAST_AUTH = AuthSettings(password_time_cost=1, password_memory_kib=1024)
ALL_SCOPES = ("stats:read", "events:write", "sites:read", "sites:write", "privacy:write")


def auth_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test server: fast password hashes, roomy limits unless overridden."""
    limits = {"key_per_minute": 100_000, "ip_per_minute": 100_000}
    auth = {"password_time_cost": 1, "password_memory_kib": 1024}
    auth.update(overrides.pop("auth", {}))  # type: ignore[call-overload]
    limits.update(overrides.pop("limits", {}))  # type: ignore[call-overload]
    return Settings(
        data_dir=str(tmp_path / "data"),
        host="127.0.0.1",
        port=free_port(),
        auth=msgspec.convert(auth, AuthSettings),
        limits=msgspec.convert(limits, LimitSettings),
        **overrides,  # type: ignore[arg-type]
    )


@dataclass
class World:
    """Helpers over one live server: users, sites, keys and signed-in clients."""

    live: LiveServer
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def meta(self):  # type: ignore[no-untyped-def]
        return self.live.services.meta

    def user(self, email: str, *, admin: bool = False) -> User:
        password_hash = Passwords(FAST_AUTH).hash_sync(PASSWORD)
        return create_user(self.meta, email, password_hash, admin=admin)

    def site(self, domain: str, owner: User, **roles: Role) -> str:
        """A site owned by `owner`; roles maps user ids to extra roles."""
        site_id = self.live.services.meta.add_site(domain).id
        set_role(self.meta, site_id, owner.id, "owner")
        for user_id, role in roles.items():
            set_role(self.meta, site_id, user_id, role)
        self.live.services.sites.reload()
        return site_id

    def share(self, site_id: str, user: User, role: Role) -> None:
        set_role(self.meta, site_id, user.id, role)

    def key(
        self,
        owner: User,
        site_id: str | None,
        scopes: tuple[str, ...] = ("stats:read",),
        expires_at: int | None = None,
    ) -> str:
        """A key's token; expires_at may lie in the past (stored directly)."""
        if expires_at is not None and expires_at <= time.time():
            token, prefix, digest = new_api_token()
            insert_key(
                self.meta,
                key_prefix=prefix,
                digest=digest,
                name="old",
                scopes=scopes,
                site_id=site_id,
                created_by=owner.id,
                expires_at=expires_at,
            )
            return token
        return create_api_key(
            self.meta,
            user_id=owner.id,
            site_id=site_id,
            scopes=scopes,
            name="test",
            expires_at=expires_at,
        )[1]

    def client(self, **headers: str) -> httpx.Client:
        client = self.live.client(**headers)
        self.clients.append(client)
        return client

    def bearer(self, token: str) -> httpx.Client:
        return self.client(Authorization=f"Bearer {token}")

    def session(self, email: str) -> httpx.Client:
        """A client signed in with the session cookie, sending its CSRF token."""
        client = self.client()
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    def jwt(self, email: str) -> str:
        with httpx.Client(base_url=self.live.url, headers={"User-Agent": CHROME_UA}) as http:
            response = http.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@contextmanager
def running_world(settings: Settings) -> Iterator[World]:
    """A live server on `settings` and a World on it; its clients closed and the server
    stopped after."""
    live = start_live_server(settings)
    found = World(live)
    try:
        yield found
    finally:
        for client in found.clients:
            client.close()
        stop_live_server(live)


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    with running_world(auth_settings(tmp_path)) as found:
        yield found
