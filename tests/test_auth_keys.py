"""API keys: Aizen's management shapes, tokens unusable from the database, the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.conftest import ROOT

AIZEN_KEY_FIELDS = {
    "id", "site_id", "created_by_user_id", "name", "scope", "key_prefix", "expires_at",
    "last_used_at", "revoked_at", "created_at", "updated_at", "preview",
}  # fmt: skip
TOKEN = re.compile(r"^av_live_([0-9a-f]{12})_[0-9A-Za-z]{32}$")


def test_aizen_create_list_revoke_answer_seed_shapes_when_owner_signed_in(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("a.test", owner)
    http = world.session("owner@example.com")
    # The seed's example expires 2026-12-31; the same end of year, always in the future.
    year = datetime.now(UTC).year + 1
    expires = datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)
    created = http.post(
        f"/api/sites/{site}/api-keys",
        json={"name": "Production reporting", "expiresAt": f"{year}-12-31T23:59:59Z"},
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"key", "token"}
    key, token = body["key"], body["token"]
    assert set(key) == AIZEN_KEY_FIELDS
    match = TOKEN.match(token)
    assert match is not None
    assert key == {
        **key,
        "site_id": site,
        "created_by_user_id": owner.id,
        "name": "Production reporting",
        "scope": "stats:read",
        "key_prefix": f"av_live_{match.group(1)}",
        "expires_at": int(expires.timestamp()),
        "last_used_at": None,
        "revoked_at": None,
        "preview": f"av_live_{match.group(1)}_" + "*" * 32,
    }
    assert abs(key["created_at"] - time.time()) < 60 and key["updated_at"] == key["created_at"]
    with httpx.Client(base_url=world.live.url, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/v1/stats/realtime").status_code == 200  # bound key: no site_id
        listed = http.get(f"/api/sites/{site}/api-keys").json()
        assert [k["id"] for k in listed["keys"]] == [key["id"]]
        assert token not in str(listed)
        assert http.delete(f"/api/sites/{site}/api-keys/{key['id']}").json() == {"ok": True}
        revoked = api.get("/api/v1/stats/realtime")
    assert revoked.status_code == 401
    assert revoked.json()["error"]["message"] == "this API key has been revoked"
    assert http.get(f"/api/sites/{site}/api-keys").json()["keys"][0]["revoked_at"] is not None


def test_key_create_refuses_bad_input_when_scope_or_expiry_is_wrong(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("a.test", owner)
    http = world.session("owner@example.com")
    for body, message in [
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt: must be in the future"),
        ({"expiresAt": "tomorrow"}, "expiresAt: not an ISO-8601 timestamp: 'tomorrow'"),
        ({"scopes": ["stats:write"]}, "scopes: unknown stats:write"),
    ]:
        response = http.post(f"/api/sites/{site}/api-keys", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(message)
    missing = http.delete(f"/api/sites/{site}/api-keys/nope")
    assert missing.status_code == 404


def test_tokens_are_absent_from_database_files_when_keys_exist(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("a.test", owner)
    http = world.session("owner@example.com")
    tokens = [http.post(f"/api/sites/{site}/api-keys", json={}).json()["token"] for _ in range(3)]
    tokens.append(world.key(owner, None, ("stats:read",)))
    data = Path(world.live.settings.data_dir)
    blobs = b"".join(p.read_bytes() for p in data.iterdir() if p.name.startswith("meta.sqlite3"))
    for token in tokens:
        secret = token.rsplit("_", 1)[1]
        assert token.encode() not in blobs
        assert secret.encode() not in blobs
        assert token.rsplit("_", 1)[0].encode() in blobs  # only the public prefix is stored
    assert PASSWORD.encode() not in blobs


def cli(data_dir: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AVOCET_AUTH__PASSWORD_MEMORY_KIB": "1024"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", data_dir, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_cli_creates_users_sites_and_keys_that_the_server_accepts_when_run_beside_it(
    world: World,
) -> None:
    import msgspec

    data = world.live.settings.data_dir
    first = cli(data, "user", "create", "Admin@Example.com", "--password-stdin", "--json",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert msgspec.json.decode(first.stdout)["is_admin"] is True
    second = cli(data, "user", "create", "two@example.com", "--password-stdin", stdin=PASSWORD)
    assert "user two@example.com created" in second.stdout
    site = msgspec.json.decode(cli(data, "site", "add", "cli.test", "--json").stdout)
    assert site["owner"] == "admin@example.com"
    made = cli(data, "key", "create", "--site", site["id"], "--owner", "admin@example.com",
               "--scopes", "stats:read,events:write", "--name", "ci", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = msgspec.json.decode(made.stdout)
    assert set(created["key"]) == AIZEN_KEY_FIELDS
    assert created["key"]["scope"] == "stats:read events:write"
    token = created["token"]
    with httpx.Client(base_url=world.live.url, headers={"X-API-Key": token}) as api:
        assert api.get("/api/v1/stats/realtime").status_code == 200
        listed = msgspec.json.decode(cli(data, "key", "list", "--json").stdout)
        assert [k["id"] for k in listed["keys"]] == [created["key"]["id"]]
        assert cli(data, "key", "revoke", created["key"]["id"]).returncode == 0
        assert api.get("/api/v1/stats/realtime").status_code == 401
    not_owner = cli(data, "key", "create", "--site", site["id"], "--owner", "two@example.com")
    assert not_owner.returncode == 2
    assert "does not own" in not_owner.stderr
