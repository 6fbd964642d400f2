"""POST /api/v1/admin/backup writes only into a new folder inside the backup root: an
instance admin's token can't drop the instance's secrets into a served folder, the app's
code or the data dir (each refusal a 400 in the API's envelope, nothing written)."""

from __future__ import annotations

import secrets
import shutil
import stat
from pathlib import Path

import httpx
import pytest

from app.backup import APP_DIR, STATIC_DIR
from tests.accounts_fixtures import World, auth_settings, world_fixture  # noqa: F401
from tests.conftest import start_live_server, stop_live_server

STATIC_UI = STATIC_DIR / "ui"  # served at /ui/static/


@pytest.fixture(name="admin")
def admin_fixture(world: World) -> httpx.Client:
    """A client holding an instance admin's all-sites key with sites:write."""
    admin = world.user("admin@example.com", admin=True)
    world.site("example.com", admin)
    return world.bearer(world.key(admin, None, ("sites:write",)))


def refused(message: str) -> dict[str, object]:
    return {"error": {"code": "invalid_request", "message": message}}


def outside_root(dest: Path, root: Path) -> str:
    return (
        f"{dest}: the server writes backups only into a new folder inside its backup"
        f" directory {root} (the backup_dir setting)"
    )


def test_a_backup_into_the_served_static_folder_is_refused_and_nothing_is_served(
    world: World, admin: httpx.Client
) -> None:
    name = f"leak-{secrets.token_hex(4)}"
    dest = STATIC_UI / name
    try:
        r = admin.post("/api/v1/admin/backup", json={"dest": str(dest)})
        assert r.status_code == 400
        assert r.json() == refused(
            f"{dest}: the backup must go outside Avocet's static files ({STATIC_DIR})"
        )
        assert not dest.exists()
        leaked = world.client().get(f"/ui/static/{name}/jwt.secret")
        assert leaked.status_code == 404
    finally:
        shutil.rmtree(dest, ignore_errors=True)  # only there if the refusal failed


def test_destinations_outside_the_backup_root_are_refused(
    world: World, admin: httpx.Client, tmp_path: Path
) -> None:
    settings = world.live.settings
    data = Path(settings.data_dir).resolve()
    root = tmp_path.resolve() / "backups"
    assert settings.backup_root == root  # the default: "backups" beside the data dir
    elsewhere = tmp_path.resolve() / "elsewhere"
    cases = {
        str(APP_DIR / "leak"): f"{APP_DIR / 'leak'}: the backup must go outside Avocet's code"
        f" ({APP_DIR})",
        str(data / "copy"): f"{data / 'copy'}: the backup must go outside the data dir ({data})",
        "../data/copy": f"{data / 'copy'}: the backup must go outside the data dir ({data})",
        str(elsewhere): outside_root(elsewhere, root),
        "../elsewhere": outside_root(elsewhere, root),
        "": outside_root(root, root),  # the root itself: each backup is a folder in it
        "/proc/self/x": outside_root(Path("/proc/self/x").resolve(), root),
        "a\x00b": f"{root / 'a'}\x00b: not a usable path (embedded null byte)",
    }
    for dest, message in cases.items():
        r = admin.post("/api/v1/admin/backup", json={"dest": dest})
        assert (r.status_code, r.json()) == (400, refused(message)), dest
    assert not (APP_DIR / "leak").exists() and not (data / "copy").exists()
    assert not elsewhere.exists()


def test_a_link_inside_the_root_to_a_served_folder_is_refused(
    admin: httpx.Client, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    root.mkdir()
    (root / "public").symlink_to(STATIC_UI, target_is_directory=True)
    r = admin.post("/api/v1/admin/backup", json={"dest": "public/leak"})
    dest = STATIC_UI / "leak"
    assert (r.status_code, r.json()) == (
        400,
        refused(f"{dest}: the backup must go outside Avocet's static files ({STATIC_DIR})"),
    )
    assert not dest.exists()


def test_a_backup_goes_into_a_new_private_folder_of_the_root(
    admin: httpx.Client, tmp_path: Path
) -> None:
    root = tmp_path.resolve() / "backups"
    r = admin.post("/api/v1/admin/backup", json={"dest": "nightly"})
    assert r.status_code == 200, r.text
    assert r.json()["dest"] == str(root / "nightly")
    names = {p.name for p in (root / "nightly").iterdir()}
    assert names == {"events.duckdb", "meta.sqlite3", "jwt.secret", "totp.key", "backup.json"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root / "nightly").iterdir()}
    assert modes == dict.fromkeys(names, 0o600)
    assert stat.S_IMODE((root / "nightly").stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700  # created by the server, private

    again = admin.post("/api/v1/admin/backup", json={"dest": str(root / "nightly")})
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": "conflict",
            "message": f"{root / 'nightly'} is not empty (use an empty directory, or --force)",
        }
    }


def test_a_backup_root_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path.resolve() / "data"
    settings = auth_settings(tmp_path, backup_dir=str(data / "backups"))
    w = World(start_live_server(settings))
    try:
        admin = w.user("admin@example.com", admin=True)
        client = w.bearer(w.key(admin, None, ("sites:write",)))
        r = client.post("/api/v1/admin/backup", json={"dest": "x"})
        dest = data / "backups" / "x"
        assert (r.status_code, r.json()) == (
            400,
            refused(f"{dest}: the backup must go outside the data dir ({data})"),
        )
        assert not (data / "backups").exists()
    finally:
        for c in w.clients:
            c.close()
        stop_live_server(w.live)
