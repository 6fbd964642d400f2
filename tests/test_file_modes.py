"""The data dir, backups and exports are readable by the account that runs Avocet only:
folders 0700, files 0600, including what an older install left world-readable."""

from __future__ import annotations

import json
import signal
import stat
from pathlib import Path

import httpx

from tests.conftest import CHROME_UA, ServeProcess

CORE_FILES = {"events.duckdb", "meta.sqlite3", "jwt.secret", "totp.key"}


def modes(folder: Path) -> dict[str, int]:
    """{name: permission bits} of a folder ('.') and everything in it."""
    found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    return {".": stat.S_IMODE(folder.stat().st_mode), **found}


def private(folder: Path) -> dict[str, int]:
    """What modes() should be: the folder 0700, each file 0600."""
    names = [p.name for p in folder.iterdir()]
    return {".": 0o700, **dict.fromkeys(names, 0o600)}


def loosen(folder: Path) -> None:
    """Modes an install made before these rules would have: 0755 and 0644."""
    folder.chmod(0o755)
    for p in folder.iterdir():
        p.chmod(0o644)


def seeded(serve: ServeProcess) -> str:
    added = serve.cli("site", "add", "example.com", "--json")
    assert added.returncode == 0, added.stderr
    site: str = json.loads(added.stdout)["id"]
    serve.start()
    hit(serve, site, "/first")
    return site


def hit(serve: ServeProcess, site: str, path: str) -> None:
    with httpx.Client(base_url=serve.url, headers={"User-Agent": CHROME_UA}) as http:
        body = {"n": "pageview", "u": f"https://example.com{path}", "s": site}
        assert http.post("/collect", content=json.dumps(body)).status_code == 204


def test_a_served_data_dir_is_private_while_it_runs(serve_process: ServeProcess) -> None:
    seeded(serve_process)
    data = serve_process.data_dir
    try:
        names = {p.name for p in data.iterdir()}
        assert names >= CORE_FILES | {"meta.sqlite3-wal", "meta.sqlite3-shm"}
        assert modes(data) == private(data)
    finally:
        serve_process.kill(signal.SIGTERM)
    assert modes(data) == private(data)


def test_an_older_world_readable_install_is_tightened_and_keeps_working(
    serve_process: ServeProcess,
) -> None:
    site = seeded(serve_process)
    serve_process.kill(signal.SIGTERM)
    data = serve_process.data_dir
    loosen(data)
    assert modes(data)["meta.sqlite3"] == 0o644

    serve_process.start()
    try:
        assert modes(data) == private(data)
        hit(serve_process, site, "/second")
    finally:
        serve_process.kill(signal.SIGTERM)
    listed = serve_process.cli("site", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == [site]

    loosen(data)  # any command that opens the data dir tightens it too
    assert serve_process.cli("site", "list").returncode == 0
    assert modes(data) == private(data)


def test_backups_restores_and_exports_are_private(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    site = seeded(serve_process)
    serve_process.kill(signal.SIGTERM)

    backup = tmp_path / "backup"
    done = serve_process.cli("backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in backup.iterdir()} == CORE_FILES | {"backup.json"}
    assert modes(backup) == private(backup)

    restored = tmp_path / "restored"
    r = serve_process.cli("--data-dir", str(restored), "restore", str(backup))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in restored.iterdir()} == CORE_FILES
    assert modes(restored) == private(restored)

    out = tmp_path / "export"
    assert serve_process.cli("export", site, "--out", str(out)).returncode == 0
    assert modes(out) == {".": 0o700, "events.csv": 0o600, "daily_stats.csv": 0o600}
    archive = tmp_path / "export.zip"
    made = serve_process.cli("export", site, "--format", "zip", "--out", str(archive))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
