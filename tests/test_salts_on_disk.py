"""A destroyed salt is gone from the disk: not in meta.sqlite3, not in its WAL, not in a
backup; and salts past their day are destroyed before anything else reads the data dir."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.backup import backup_store
from app.ingest.identity import Salts
from app.storage.meta import MetaStore
from tests.conftest import CHROME_UA, ROOT, LiveServer, ServeProcess

ZONES = ("America/Los_Angeles", "Asia/Tokyo")


def local_today(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def seed_salts(meta: MetaStore, site_id: str, zone: str, days: int = 5) -> dict[str, bytes]:
    """Salts of today and the days before it, created as ingestion creates them:
    {day: salt} (the bytes read back now, before anything destroys them)."""
    today = local_today(zone)
    return {
        day: meta.salt(site_id, day)
        for day in ((today - timedelta(days=back)).isoformat() for back in range(days))
    }


def split(salts: dict[str, bytes], zone: str) -> tuple[list[bytes], list[bytes]]:
    """(salts past their promise, salts still kept): a salt serves its day and the next."""
    yesterday = (local_today(zone) - timedelta(days=1)).isoformat()
    old = [salt for day, salt in salts.items() if day < yesterday]
    kept = [salt for day, salt in salts.items() if day >= yesterday]
    return old, kept


def disk_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a folder as raw bytes (meta.sqlite3, -wal, -shm, events, secrets...)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def found(needles: list[bytes], files: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(name, n.hex()) for n in needles for name, blob in files.items() if n in blob]


@pytest.mark.parametrize("checkpointed", [False, True], ids=["in-wal", "in-main-file"])
@pytest.mark.parametrize("how", ["sweep", "ingest"])
def test_destroyed_salts_leave_meta_and_its_wal_while_the_connection_stays_open(
    tmp_path: Path, how: str, checkpointed: bool
) -> None:
    meta = MetaStore(tmp_path / "meta.sqlite3")
    try:
        old: list[bytes] = []
        kept: list[bytes] = []
        sites = [
            (meta.add_site(f"s{i}.example", timezone=zone).id, zone) for i, zone in enumerate(ZONES)
        ]
        for site_id, zone in sites:
            o, k = split(seed_salts(meta, site_id, zone), zone)
            old += o
            kept += k
        if checkpointed:  # the salts' pages already copied into meta.sqlite3 itself
            meta.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        before = disk_bytes(tmp_path)
        assert found(old, before), "the salts are on disk before they are destroyed"

        if how == "sweep":
            assert meta.destroy_expired_salts(datetime.now(UTC)) == 6
        else:  # the running server's path: Salts.destroy_before, once per site and day
            salts = Salts(meta)
            for site_id, zone in sites:
                salts.destroy_before(site_id, local_today(zone))

        after = disk_bytes(tmp_path)
        assert found(old, after) == []
        assert len(found(kept, after)) >= 4  # the search does see salts that still live
        assert after.get("meta.sqlite3-wal", b"") == b""  # truncated, not merely reset
    finally:
        meta.close()


def test_serve_destroys_salts_past_their_day_at_start(serve_process: ServeProcess) -> None:
    data = serve_process.data_dir
    added = serve_process.cli("site", "add", "example.com", "--timezone", ZONES[0], "--json")
    assert added.returncode == 0, added.stderr
    site = json.loads(added.stdout)["id"]
    meta = MetaStore(data / "meta.sqlite3")  # salts left by a server that stopped days ago
    old, kept = split(seed_salts(meta, site, ZONES[0]), ZONES[0])
    meta.close()
    assert len(found(old, disk_bytes(data))) == 3

    serve_process.start()  # no request, no minute of waiting: the start itself destroys them
    try:
        files = disk_bytes(data)
        assert found(old, files) == []
        assert len(found(kept, files)) == 2
    finally:
        serve_process.kill(signal.SIGTERM)


def test_cli_commands_destroy_salts_past_their_day(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "site", "add", "example.com", "--timezone", ZONES[1]).returncode == 0
    meta = MetaStore(data / "meta.sqlite3")
    [site] = meta.sites()
    old, kept = split(seed_salts(meta, site.id, ZONES[1]), ZONES[1])
    meta.close()

    listed = cli(data, "site", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    files = disk_bytes(data)
    assert found(old, files) == []
    assert len(found(kept, files)) == 2


def salt_rows(meta_file: Path) -> list[tuple[str, str, bytes]]:
    con = sqlite3.connect(f"file:{meta_file}?mode=ro", uri=True)
    try:
        return con.execute("SELECT site_id, day, salt FROM salts").fetchall()
    finally:
        con.close()


def test_a_backup_holds_no_salt_when_taken_from_the_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "site", "add", "example.com").returncode == 0
    meta = MetaStore(data / "meta.sqlite3")
    [site] = meta.sites()
    salts = list(seed_salts(meta, site.id, "UTC", days=2).values())  # today and yesterday
    meta.close()
    assert len(found(salts, disk_bytes(data))) == 2

    backup = tmp_path / "backup"
    done = cli(data, "backup", str(backup), "--json")
    assert done.returncode == 0, done.stderr
    assert found(salts, disk_bytes(backup)) == []
    assert salt_rows(backup / "meta.sqlite3") == []
    assert [s.id for s in MetaStore(backup / "meta.sqlite3").sites()] == [site.id]
    doctor = cli(backup, "doctor", "--json")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["meta"]["integrity"] == "ok"
    assert len(found(salts, disk_bytes(data))) == 2  # the live data dir keeps its own


def test_a_backup_holds_no_salt_when_the_running_server_takes_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    site = live_server.add_site("example.com")
    with live_server.client() as http:  # ingestion makes today's salt
        body = {"n": "pageview", "u": "https://example.com/", "s": site}
        assert http.post("/collect", content=json.dumps(body)).status_code == 204
    meta = live_server.services.meta
    [(salt,)] = meta.fetchall("SELECT salt FROM salts")
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    salts = [bytes(salt), meta.salt(site, yesterday)]

    backup = tmp_path / "backups" / "now"
    data = Path(live_server.settings.data_dir)
    backup_store(live_server.services.events, data, backup, root=tmp_path / "backups")
    assert found(salts, disk_bytes(backup)) == []
    assert salt_rows(backup / "meta.sqlite3") == []
    assert len(meta.fetchall("SELECT salt FROM salts")) == 2  # the server's are untouched


def test_restore_of_an_older_backup_drops_its_salts(tmp_path: Path) -> None:
    """A backup written before backups left salts out still has them: restore drops them."""
    old_backup = tmp_path / "old-backup"
    assert cli(old_backup, "site", "add", "example.com").returncode == 0
    meta = MetaStore(old_backup / "meta.sqlite3")
    [site] = meta.sites()
    salts = list(seed_salts(meta, site.id, "UTC", days=2).values())
    meta.close()
    assert cli(old_backup, "rollup").returncode == 0  # creates its events.duckdb
    assert len(found(salts, disk_bytes(old_backup))) == 2

    data = tmp_path / "data"
    restored = cli(data, "restore", str(old_backup))
    assert restored.returncode == 0, restored.stderr
    assert found(salts, disk_bytes(data)) == []
    assert salt_rows(data / "meta.sqlite3") == []


def test_a_restored_backup_serves_with_new_salts(serve_process: ServeProcess) -> None:
    """Nothing needs the dropped salts: the first hit after a restore makes today's anew."""
    data = serve_process.data_dir
    added = serve_process.cli("site", "add", "example.com", "--json")
    site = json.loads(added.stdout)["id"]
    serve_process.start()
    with httpx.Client(base_url=serve_process.url, headers={"User-Agent": CHROME_UA}) as http:
        body = {"n": "pageview", "u": "https://example.com/", "s": site}
        assert http.post("/collect", content=json.dumps(body)).status_code == 204
    serve_process.kill(signal.SIGTERM)
    [before] = salt_rows(data / "meta.sqlite3")

    backup = data.parent / "backup"
    assert serve_process.cli("backup", str(backup)).returncode == 0
    moved = data.rename(data.parent / "lost")
    assert moved.exists()
    assert serve_process.cli("restore", str(backup)).returncode == 0
    assert salt_rows(data / "meta.sqlite3") == []
    serve_process.start()
    with httpx.Client(base_url=serve_process.url, headers={"User-Agent": CHROME_UA}) as http:
        body = {"n": "pageview", "u": "https://example.com/again", "s": site}
        assert http.post("/collect", content=json.dumps(body)).status_code == 204
    serve_process.kill(signal.SIGTERM)
    [after] = salt_rows(data / "meta.sqlite3")
    assert after[:2] == before[:2] and after[2] != before[2]  # same site and day, new salt


def test_the_sweep_still_runs_when_a_site_zone_no_longer_loads(tmp_path: Path) -> None:
    """A zone name the zone database lacks must not stop every command from opening the
    store: the sweep then counts days in the zone whose day begins last (UTC-12)."""
    meta = MetaStore(tmp_path / "meta.sqlite3")
    try:
        site = meta.add_site("example.com").id
        salts = seed_salts(meta, site, "Etc/GMT+12")
        meta.execute("UPDATE sites SET timezone = 'Nowhere/Gone' WHERE id = ?", (site,))
        old, kept = split(salts, "Etc/GMT+12")
        assert meta.destroy_expired_salts(datetime.now(UTC)) == 3
        files = disk_bytes(tmp_path)
        assert found(old, files) == [] and len(found(kept, files)) == 2
    finally:
        meta.close()
