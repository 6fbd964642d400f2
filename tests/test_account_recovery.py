"""Account recovery (#19 item 6, with #17's sign-in path): a QR code for the TOTP setup,
one-time recovery codes kept as HMACs, and `avocet user list|reset-password|delete`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyotp

from app.auth.signin import set_totp
from app.auth.twofactor import new_secret
from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.conftest import ROOT
from tests.test_ui_forms import sign_in_ui

EMAIL = "owner@example.com"
_CODE = re.compile(r"\b([a-z2-7]{5}-[a-z2-7]{5})\b")


def _cli(world: World, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.cli", "--data-dir", world.live.settings.data_dir]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=ROOT, input=stdin, check=False
    )


def test_totp_setup_shows_a_qr_code_and_ten_recovery_codes_once(world: World) -> None:
    world.user(EMAIL)
    http, csrf = sign_in_ui(world, EMAIL)
    setup = http.get("/ui/account/totp").text
    assert '<div class="qr"><svg' in setup
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', setup).group(1)  # type: ignore[union-attr]
    answer = http.post(
        "/ui/account/totp",
        data={"csrf_token": csrf, "secret": secret, "code": pyotp.TOTP(secret).now()},
    )
    assert answer.status_code == 303  # post/redirect/get: the codes are on the next page
    assert answer.headers["location"].startswith("/ui/account/recovery-codes?shown=")
    answer = http.get(answer.headers["location"])
    assert answer.status_code == 200
    codes = _CODE.findall(answer.text)
    assert len(codes) == 10 == len(set(codes))
    stored = world.meta.fetchall("SELECT digest FROM recovery_codes")
    assert len(stored) == 10
    for path in Path(world.live.settings.data_dir).iterdir():
        if path.is_file():
            assert not any(c.encode() in path.read_bytes() for c in codes), path.name
    assert "10 of 10 unused" in http.get("/ui/account").text


def test_recovery_code_signs_in_once_instead_of_the_app_code(world: World) -> None:
    user = world.user(EMAIL)
    codes = set_totp(world.live.services.auth, user.id, new_secret())
    body = {"email": EMAIL, "password": PASSWORD}
    with world.client() as http:
        first = http.post("/api/v1/auth/token", json={**body, "code": codes[3].upper()})
        again = http.post("/api/v1/auth/token", json={**body, "code": codes[3]})
        other = http.post("/api/v1/auth/token", json={**body, "code": codes[4].replace("-", "")})
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["error"]["message"] == (
        "that recovery code is not right or was used already"
    )
    assert other.status_code == 200


def test_turning_two_factor_off_drops_the_recovery_codes(world: World) -> None:
    user = world.user(EMAIL)
    codes = set_totp(world.live.services.auth, user.id, new_secret())
    set_totp(world.live.services.auth, user.id, None)
    assert world.meta.fetchall("SELECT * FROM recovery_codes") == []
    set_totp(world.live.services.auth, user.id, new_secret())
    with world.client() as http:
        stale = http.post(
            "/api/v1/auth/token", json={"email": EMAIL, "password": PASSWORD, "code": codes[0]}
        )
    assert stale.status_code == 401


def test_cli_lists_resets_and_deletes_users(world: World) -> None:
    owner = world.user(EMAIL, admin=True)
    world.user("helper@example.com")
    world.site("shop.test", owner)
    listed = _cli(world, "user", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"email":"owner@example.com"' in listed.stdout
    assert '"email":"helper@example.com"' in listed.stdout
    session = world.session("helper@example.com")
    reset = _cli(
        world,
        "user",
        "reset-password",
        "helper@example.com",
        "--password-stdin",
        stdin="a brand new password\n",
    )
    assert reset.returncode == 0, reset.stderr
    assert session.get("/api/v1/auth/me").status_code == 401  # signed out everywhere
    with world.client() as http:
        old = {"email": "helper@example.com", "password": PASSWORD}
        new = {"email": "helper@example.com", "password": "a brand new password"}
        assert http.post("/api/v1/auth/token", json=old).status_code == 401
        assert http.post("/api/v1/auth/token", json=new).status_code == 200
    only_owner = _cli(world, "user", "delete", EMAIL)
    assert only_owner.returncode != 0
    assert "only owner of site" in only_owner.stderr
    gone = _cli(world, "user", "delete", "helper@example.com", "--json")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.strip() == '{"email":"helper@example.com","deleted":true}'
    assert world.meta.fetchone("SELECT 1 FROM users WHERE email = 'helper@example.com'") is None
