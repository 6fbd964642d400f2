"""Sign-in attacks of the security review (#17): 2FA bypass through the JSON API (1), login
CSRF (8), JWTs that outlive a password change (10), TOTP secrets in clear (13), and an
account lock that a stranger can trigger (15)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from app.auth.signin import set_totp
from app.auth.twofactor import new_secret
from app.storage.accounts import User, set_password_hash
from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.test_ui_forms import form_token

EMAIL = "owner@example.com"


def _two_factor(world: World) -> tuple[User, pyotp.TOTP]:
    user = world.user(EMAIL)
    secret = new_secret()
    set_totp(world.live.services.auth, user.id, secret)
    return user, pyotp.TOTP(secret)


def _code(totp: pyotp.TOTP, ahead: int = 0) -> str:
    return totp.at(time.time() + 30 * ahead)


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/token"])
def test_password_alone_gets_no_credential_when_two_factor_on(world: World, path: str) -> None:
    _two_factor(world)
    with world.client() as http:
        answer = http.post(path, json={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"two_factor_required", "pending_token", "expires_in"}
        assert body["two_factor_required"] is True
        assert body["expires_in"] == 300
        assert "set-cookie" not in answer.headers
        assert http.get("/api/v1/auth/me").status_code == 401
        # The pending token is no Bearer token.
        pending = {"Authorization": f"Bearer {body['pending_token']}"}
        assert http.get("/api/v1/auth/me", headers=pending).status_code == 401


def test_api_login_completes_with_the_code_step_when_two_factor_on(world: World) -> None:
    _, totp = _two_factor(world)
    with world.client() as http:
        pending = http.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        token = pending.json()["pending_token"]
        wrong = http.post("/api/v1/auth/login", json={"pending_token": token, "code": "000000"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["message"] == (
            "that code is not right; enter the current 6-digit code"
        )
        assert "set-cookie" not in wrong.headers
        right = http.post("/api/v1/auth/login", json={"pending_token": token, "code": _code(totp)})
        assert right.status_code == 200, right.text
        assert right.json()["user"]["email"] == EMAIL
        assert http.get("/api/v1/auth/me").json()["via"] == "session"
        # The same code can't complete a second sign-in.
        again = http.post("/api/v1/auth/login", json={"pending_token": token, "code": _code(totp)})
        assert again.status_code == 401


def test_api_token_in_one_step_needs_the_right_code_when_two_factor_on(world: World) -> None:
    _, totp = _two_factor(world)
    with world.client() as http:
        body = {"email": EMAIL, "password": PASSWORD}
        wrong = http.post("/api/v1/auth/token", json={**body, "code": "123456"})
        right = http.post("/api/v1/auth/token", json={**body, "code": _code(totp)})
    assert wrong.status_code == 401
    assert "access_token" not in wrong.text
    assert right.status_code == 200
    with world.bearer(right.json()["access_token"]) as http:
        assert http.get("/api/v1/auth/me").json()["via"] == "jwt"


def test_users_without_two_factor_sign_in_with_password_only(world: World) -> None:
    world.user(EMAIL)
    with world.client() as http:
        answer = http.post("/api/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/setup", "/api/v1/auth/token"])
def test_cross_site_form_post_refused_when_signing_in(world: World, path: str) -> None:
    # What a hostile page's <form enctype="text/plain"> sends.
    body = f'{{"email": "{EMAIL}", "password": "{PASSWORD}", "x": "="}}'
    with world.client() as http:
        plain = http.post(path, content=body, headers={"Content-Type": "text/plain"})
        evil = http.post(
            path,
            json={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        fetched = http.post(
            path,
            json={"email": EMAIL, "password": PASSWORD},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
    assert plain.status_code == 400
    assert plain.json()["error"]["code"] == "invalid_request"
    assert (evil.status_code, fetched.status_code) == (403, 403)
    assert evil.json()["error"]["code"] == "forbidden"


def test_same_origin_browser_sign_in_still_works(world: World) -> None:
    world.user(EMAIL)
    with world.client() as http:
        host = http.base_url.netloc.decode()
        answer = http.post(
            "/api/v1/auth/login",
            json={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
        )
    assert answer.status_code == 200


def test_jwt_refused_after_password_change_or_revoke(world: World) -> None:
    user = world.user(EMAIL)
    first = world.jwt(EMAIL)
    with world.bearer(first) as http:
        assert http.get("/api/v1/auth/me").status_code == 200
    set_password_hash(world.meta, user.id, world.live.services.auth.passwords.hash_sync("n" * 12))
    with world.bearer(first) as http:
        refused = http.get("/api/v1/auth/me")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "invalid, expired or revoked token"

    set_password_hash(world.meta, user.id, world.live.services.auth.passwords.hash_sync(PASSWORD))
    second, third = world.jwt(EMAIL), world.jwt(EMAIL)
    with world.bearer(second) as http:
        assert http.post("/api/v1/auth/token/revoke").json() == {"ok": True}
    for token in (second, third):
        with world.bearer(token) as http:
            assert http.get("/api/v1/auth/me").status_code == 401
    with world.bearer(world.jwt(EMAIL)) as http:  # a new one works
        assert http.get("/api/v1/auth/me").status_code == 200


def test_totp_secret_is_not_stored_in_clear_when_two_factor_on(world: World) -> None:
    user = world.user(EMAIL)
    secret = new_secret()
    set_totp(world.live.services.auth, user.id, secret)
    world.meta.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = Path(world.live.settings.data_dir)
    for path in data.iterdir():
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path.name
    stored = world.meta.fetchone("SELECT totp_secret FROM users WHERE id = ?", (user.id,))[0]
    assert stored.startswith("gAAAA")  # a Fernet token
    assert oct((data / "totp.key").stat().st_mode & 0o777) == "0o600"


def test_clear_totp_secret_of_an_older_version_is_sealed_at_start(world: World) -> None:
    user = world.user(EMAIL)
    secret = new_secret()
    live = world.live
    path = Path(live.settings.data_dir) / "meta.sqlite3"
    with sqlite3.connect(path) as db:  # what an older version wrote
        db.execute("UPDATE users SET totp_secret = ? WHERE id = ?", (secret, user.id))
    from app.auth.principal import Authenticator

    auth = Authenticator(live.settings, live.services.meta)
    stored = live.services.meta.fetchone("SELECT totp_secret FROM users WHERE id = ?", (user.id,))
    assert stored[0] != secret
    assert auth.totp_box.open(stored[0]) == secret


def _ui_login(http: httpx.Client, password: str) -> httpx.Response:
    token = form_token(http, "/ui/login")
    return http.post("/ui/login", data={"csrf_token": token, "email": EMAIL, "password": password})


def test_ui_lock_is_429_per_account_and_address_when_guessing(world: World) -> None:
    world.user(EMAIL)
    limit = world.live.settings.auth.login_attempts_per_account
    with world.client(**{"X-Forwarded-For": "203.0.113.9"}) as attacker:
        for _ in range(limit):
            assert _ui_login(attacker, "wrong password!").status_code == 400
        locked = _ui_login(attacker, PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 15 * 60
    # The owner, elsewhere, is not locked out by the stranger's guesses.
    with world.client(**{"X-Forwarded-For": "198.51.100.7"}) as owner:
        answer = _ui_login(owner, PASSWORD)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sites"


def test_api_lock_lets_a_right_second_factor_through(world: World) -> None:
    _, totp = _two_factor(world)
    limit = world.live.settings.auth.login_attempts_per_account
    body = {"email": EMAIL, "password": "wrong password!"}
    with world.client() as http:
        for _ in range(limit):
            assert http.post("/api/v1/auth/token", json=body).status_code == 401
        locked = http.post("/api/v1/auth/token", json={**body, "password": PASSWORD})
        assert locked.status_code == 429
        assert "Retry-After" in locked.headers
        wrong_code = http.post(
            "/api/v1/auth/token", json={**body, "password": PASSWORD, "code": "000000"}
        )
        assert wrong_code.status_code == 429
        through = http.post(
            "/api/v1/auth/token", json={**body, "password": PASSWORD, "code": _code(totp)}
        )
    assert through.status_code == 200, through.text
    assert through.json()["token_type"] == "Bearer"


def test_unreadable_totp_secret_fails_closed_until_reset_by_cli(world: World) -> None:
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    from app.auth.twofactor import SecretBox
    from tests.conftest import ROOT

    user, _ = _two_factor(world)
    foreign = SecretBox(Fernet.generate_key()).seal(new_secret())  # as if totp.key were lost
    world.meta.execute("UPDATE users SET totp_secret = ? WHERE id = ?", (foreign, user.id))
    body = {"email": EMAIL, "password": PASSWORD}
    with world.client() as http:
        refused = http.post("/api/v1/auth/token", json=body)
    assert refused.status_code == 401
    assert "totp.key" in refused.json()["error"]["message"]
    command = [sys.executable, "-m", "app.cli", "--data-dir", world.live.settings.data_dir]
    done = subprocess.run(
        [*command, "user", "reset-2fa", EMAIL, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"email":"owner@example.com","two_factor":false}'
    with world.client() as http:
        assert http.post("/api/v1/auth/token", json=body).status_code == 200


def test_browser_sign_in_behind_a_host_rewriting_proxy_matches_public_url(tmp_path: Path) -> None:
    from tests.accounts_fixtures import auth_settings
    from tests.conftest import start_live_server, stop_live_server

    live = start_live_server(auth_settings(tmp_path, public_url="https://stats.example.org"))
    try:
        world = World(live)
        world.user(EMAIL)
        body = {"email": EMAIL, "password": PASSWORD}
        with world.client() as http:
            ours = http.post(
                "/api/v1/auth/login", json=body, headers={"Origin": "https://stats.example.org"}
            )
            theirs = http.post(
                "/api/v1/auth/login", json=body, headers={"Origin": "https://evil.example.org"}
            )
        assert (ours.status_code, theirs.status_code) == (200, 403)
    finally:
        stop_live_server(live)
