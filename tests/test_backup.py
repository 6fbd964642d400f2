"""avocet backup / restore / doctor / export: copies that open and give the same answers."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx

from app.backup import backup_store
from app.jobs.lifecycle import rollup_sites
from app.query.model import Query
from app.query.periods import day_range
from app.query.run import run_query_sync
from app.storage.events import EventStore
from app.storage.meta import Site
from tests.conftest import CHROME_UA, ROOT, LiveServer, ServeProcess, free_port

PASSWORD = "a long enough test password 42"
CSV_FILES = ("events.csv", "daily_stats.csv")


def cli(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        env=env if env is not None else _without_token(),
        check=False,
    )


def _without_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "AVOCET_TOKEN"}


def post_event(http: httpx.Client, site: str, path: str, i: int) -> bool:
    body = {"n": "pageview", "u": f"https://example.com{path}", "s": site}
    ip = f"10.{i % 200}.{i % 250}.{i % 199 + 1}"
    try:
        r = http.post("/collect", content=json.dumps(body), headers={"X-Forwarded-For": ip})
    except httpx.TransportError:
        return False
    return r.status_code == 204


def paths(data_dir: Path) -> set[str]:
    con = duckdb.connect(str(data_dir / "events.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT pathname FROM events").fetchall()}
    finally:
        con.close()


def answers(data_dir: Path, site: str) -> dict[str, Any]:
    store = EventStore(data_dir / "events.duckdb")
    try:
        today = datetime.now(UTC).date()
        q = Query(
            site_id=site,
            period=day_range("custom", ZoneInfo("UTC"), today - timedelta(days=2), today),
            metrics=("visitors", "pageviews"),
            dimensions=("page",),
            site_timezone="UTC",
        )
        rows = run_query_sync(store, q).rows
        count = store.query("SELECT count(*) FROM events WHERE site_id = ?", [site])[0][0]
        return {"rows": sorted(rows, key=lambda r: str(r["page"])), "count": count}
    finally:
        store.close()


def seeded(serve: ServeProcess, n: int) -> str:
    added = serve.cli("site", "add", "example.com", "--json")
    assert added.returncode == 0, added.stderr
    site: str = json.loads(added.stdout)["id"]
    serve.start()
    with httpx.Client(base_url=serve.url, headers={"User-Agent": CHROME_UA}) as http:
        for i in range(n):
            assert post_event(http, site, f"/p/{i % 7}", i)
    return site


def test_backup_of_stopped_dir_restores_and_answers_the_same(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    site = seeded(serve_process, 40)
    serve_process.kill(signal.SIGTERM)
    data = serve_process.data_dir
    before = answers(data, site)
    assert before["count"] == 40

    backup = tmp_path / "backup"
    done = cli(data, "backup", str(backup), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet under --json
    result = json.loads(done.stdout)
    assert result["via"] == "files" and result["rows"]["events"] == 40
    assert (backup / "meta.sqlite3").exists() and (backup / "jwt.secret").exists()

    again = cli(data, "backup", str(backup))
    assert again.returncode == 2 and "not empty" in again.stderr
    inside = cli(data, "backup", str(data / "copy"))
    assert inside.returncode == 2 and "outside the data dir" in inside.stderr
    shown = cli(data, "backup", str(tmp_path / "second"), "--progress")
    assert shown.returncode == 0 and "copying events" in shown.stderr
    assert "events: 40 rows" in shown.stdout
    quiet = cli(data, "backup", str(tmp_path / "third"))  # stderr is not a terminal
    assert quiet.returncode == 0 and quiet.stderr == ""

    restored = tmp_path / "restored"
    r = cli(restored, "restore", str(backup), "--json")
    assert r.returncode == 0, r.stderr
    refused = cli(restored, "restore", str(backup))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert cli(restored, "restore", str(backup), "--force").returncode == 0

    for folder in (backup, restored):
        doc = cli(folder, "doctor", "--json")
        assert doc.returncode == 0, doc.stdout + doc.stderr
        report = json.loads(doc.stdout)
        assert report["healthy"] and report["events"]["rows"]["events"] == 40
        assert report["meta"]["integrity"] == "ok" and report["meta"]["rows"]["sites"] == 1
        assert answers(folder, site) == before
    listed = cli(restored, "site", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == [site]


def test_doctor_reports_a_damaged_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.sqlite3").write_bytes(b"")
    doc = cli(data, "doctor", "--json")
    assert doc.returncode == 1
    assert not json.loads(doc.stdout)["healthy"]
    # The same in words: what is missing, on stderr, and no traceback.
    said = cli(data, "doctor")
    assert said.returncode == 1
    assert "events: schema None" in said.stdout
    assert "PROBLEM: events.duckdb is missing" in said.stderr
    assert "Traceback" not in said.stderr


def test_backup_through_running_server_keeps_every_acked_event(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    site = seeded(serve_process, 0)
    data = serve_process.data_dir
    made = cli(data, "user", "create", "admin@example.com", "--password-stdin", stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    key = cli(data, "key", "create", "--all-sites", "--scopes", "sites:write", "--json")
    assert key.returncode == 0, key.stderr
    token = json.loads(key.stdout)["token"]
    viewer_key = cli(data, "key", "create", "--all-sites", "--scopes", "stats:read", "--json")
    weak_token = json.loads(viewer_key.stdout)["token"]

    acked_before: list[str] = []
    with httpx.Client(base_url=serve_process.url, headers={"User-Agent": CHROME_UA}) as http:
        for i in range(300):
            if post_event(http, site, f"/before/{i}", i):
                acked_before.append(f"/before/{i}")
    assert len(acked_before) == 300

    stop = threading.Event()
    acked_during: list[str] = []

    def keep_posting() -> None:
        with httpx.Client(base_url=serve_process.url, headers={"User-Agent": CHROME_UA}) as h:
            i = 0
            while not stop.is_set():
                if post_event(h, site, f"/during/{i}", i + 1000):
                    acked_during.append(f"/during/{i}")
                i += 1

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        time.sleep(0.3)
        url = serve_process.url
        backup = tmp_path / "backups" / "live"  # inside the default backup root
        denied = cli(data, "backup", str(backup), "--url", url, "--token", weak_token)
        assert denied.returncode == 2 and "403" in denied.stderr
        no_token = cli(data, "backup", str(backup), "--url", url)
        assert no_token.returncode == 2 and "--token" in no_token.stderr
        elsewhere = cli(data, "backup", str(tmp_path / "out"), "--url", url, "--token", token)
        assert elsewhere.returncode == 2 and not (tmp_path / "out").exists()
        assert elsewhere.stderr == (
            "avocet: the server refused the backup (400): "
            f"{tmp_path.resolve() / 'out'}: the server writes backups only into a new folder"
            f" inside its backup directory {tmp_path.resolve() / 'backups'} (the backup_dir"
            " setting)\n"
        )
        # Without a token the running server does it for the CLI (its local socket).
        export = cli(data, "export", site, "--out", str(tmp_path / "exported"))
        assert export.returncode == 0, export.stderr
        assert (tmp_path / "exported" / "events.csv").is_file()
        done = cli(data, "backup", str(backup), "--url", url, "--token", token, "--json")
        assert done.returncode == 0, done.stderr
        time.sleep(0.3)
    finally:
        stop.set()
        poster.join()
    assert json.loads(done.stdout)["via"] == "server"
    busy = cli(data, "restore", str(backup), "--force")
    assert busy.returncode == 2 and "stop it" in busy.stderr
    doc = cli(data, "doctor")
    assert doc.returncode == 0 and doc.stdout.endswith("healthy\n"), doc.stderr
    assert acked_during  # ingestion went on around the backup
    serve_process.kill(signal.SIGTERM)

    in_backup = paths(backup)
    assert set(acked_before) <= in_backup
    assert in_backup <= set(acked_before) | {f"/during/{i}" for i in range(100_000)}
    assert set(acked_before) | set(acked_during) <= paths(data)
    assert cli(backup, "doctor").returncode == 0


def test_ingestion_goes_on_while_the_backup_copies(live_server: LiveServer, tmp_path: Path) -> None:
    """The copy reads one snapshot instead of holding the writer: an event posted while it
    runs is acknowledged at once, and left out of the backup whole (it came after)."""
    site = live_server.add_site("example.com")
    with live_server.client() as http:
        assert all(post_event(http, site, f"/before/{i}", i) for i in range(50))
        during: list[tuple[str, float]] = []

        def progress(message: str) -> None:
            if message == "copying events...":  # inside the copy's transaction
                started = time.monotonic()
                acked = post_event(http, site, "/during", 999)
                during.append((message, time.monotonic() - started))
                assert acked

        backup = tmp_path / "backup"
        data = Path(live_server.settings.data_dir)
        result = backup_store(live_server.services.events, data, backup, progress)
    assert len(during) == 1 and during[0][1] < 5  # with the writer held: never acked
    assert result["rows"]["events"] == 50
    assert paths(backup) == {f"/before/{i}" for i in range(50)}
    assert live_server.rows("SELECT count(*) AS n FROM events") == [{"n": 51}]
    assert cli(backup, "doctor").returncode == 0


def test_export_writes_events_and_daily_stats_csv(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    site = seeded(serve_process, 12)
    serve_process.kill(signal.SIGTERM)
    data = serve_process.data_dir
    store = EventStore(data / "events.duckdb")
    try:  # "tomorrow" today is a finished day: roll it up
        sites = [Site(site, "example.com", "example.com", "UTC", "", b"", "UTC")]
        report = rollup_sites(store, sites, now=datetime.now(UTC) + timedelta(days=1))
        assert report.done == {site: 1}
        stats_rows = store.query("SELECT count(*) FROM daily_stats WHERE site_id = ?", [site])
    finally:
        store.close()
    out = tmp_path / "out"
    today = datetime.now(UTC).date().isoformat()
    done = cli(data, "export", site, "--format", "csv", "--from", today, "--to", today,
               "--out", str(out), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    files = json.loads(done.stdout)["files"]
    assert files["events"]["rows"] == 12 and files["daily_stats"]["rows"] == stats_rows[0][0] > 0
    with (out / "events.csv").open() as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:4] == ["site_id", "ts", "day", "name"]
    assert not {"visitor_id", "session_id", "user_key"} & set(header)
    assert len(rows) == 13
    with (out / "daily_stats.csv").open() as f:
        stats_header = next(csv.reader(f))
    assert stats_header[:4] == ["site_id", "day", "property", "value"]
    # --format zip: the same two files in one archive.
    archive = tmp_path / "site.zip"
    zipped = cli(data, "export", site, "--format", "zip", "--from", today, "--to", today,
                 "--out", str(archive), "--json")  # fmt: skip
    assert zipped.returncode == 0, zipped.stderr
    zfiles = json.loads(zipped.stdout)["files"]
    assert {t: f["rows"] for t, f in zfiles.items()} == {t: f["rows"] for t, f in files.items()}
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["daily_stats.csv", "events.csv"]
        assert z.read("events.csv") == (out / "events.csv").read_bytes()
        assert z.read("daily_stats.csv") == (out / "daily_stats.csv").read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    empty = cli(data, "export", site, "--from", "2000-01-01", "--to", "2000-01-02",
                "--out", str(tmp_path / "none"), "--json")  # fmt: skip
    assert json.loads(empty.stdout)["files"]["events"]["rows"] == 0


def test_a_clickhouse_instance_backs_up_to_the_same_layout_and_comes_back(
    tmp_path: Path,
) -> None:
    """storage = "clickhouse": `avocet backup` (no server) and POST /api/v1/admin/backup
    (a server holding chdb's folder) write the usual layout, its events.duckdb copied from
    ClickHouse; restored, and moved back to ClickHouse, it exports the hand-computed tables
    of tests/test_export.py."""
    from tests.test_export import EXPECTED, GOAT, named, tables
    from tests.test_imports import _env

    data = tmp_path / "data"
    env = _env()
    assert cli(data, "site", "add", "example.com", env=env).returncode == 0
    done = cli(data, "import", "goatcounter", str(GOAT), "--site", "example.com",
               env={**env, "AVOCET_RAW_RETENTION_DAYS": "100000"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cli(data, "migrate-storage", "--to", "clickhouse", env=env).returncode == 0
    (data / "events.duckdb").unlink()
    ch_env = {**env, "AVOCET_STORAGE": "clickhouse", "AVOCET_RAW_RETENTION_DAYS": "100000"}
    assert cli(data, "user", "create", "admin@example.com", "--admin", "--password-stdin",
               stdin=PASSWORD, env=ch_env).returncode == 0  # fmt: skip
    key = cli(data, "key", "create", "--all-sites", "--scopes", "sites:write", "--json",
              env=ch_env)  # fmt: skip
    token = json.loads(key.stdout)["token"]

    offline = cli(data, "backup", str(tmp_path / "offline"), "--json", env=ch_env)
    assert offline.returncode == 0, offline.stderr
    rows = json.loads(offline.stdout)["rows"]
    # goatcounter-v2.csv: 6 pageviews and a signup event, days kept raw.
    assert (rows["events"], rows["daily_rollups"] > 0, rows["rollup_days"]) == (7, True, 2)
    checked = cli(data, "doctor", "--json", env=ch_env)
    assert checked.returncode == 0, checked.stderr
    health = json.loads(checked.stdout)
    assert (health["healthy"], health["problems"]) == (True, [])
    assert health["events"]["engine"] == "clickhouse"
    assert health["events"]["rows"]["events"] == 7
    assert health["events"]["rows"]["rollup_days"] >= 2  # FINAL-less: a rebuild's rows too
    assert health["events"]["bytes"] > 0 and health["events"]["redates_pending"] == []

    serve = ServeProcess(data, free_port(), extra_env={k: v for k, v in ch_env.items()
                                                       if k.startswith("AVOCET_")})  # fmt: skip
    serve.start()
    try:
        online = httpx.post(
            f"{serve.url}/api/v1/admin/backup",
            json={"dest": "online"},  # in the server's backup_dir, beside the data dir
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        # The CLI beside the server: the server runs the command on its own store.
        beside = cli(data, "backup", str(tmp_path / "beside"), "--json", env=ch_env)
        assert beside.returncode == 0, beside.stderr
        assert (json.loads(beside.stdout)["via"], json.loads(beside.stdout)["rows"]) == (
            "server",
            rows,
        )
        served_health = cli(data, "doctor", "--json", env=ch_env)  # the server's own store
        assert served_health.returncode == 0, served_health.stderr
        assert json.loads(served_health.stdout)["events"]["rows"] == health["events"]["rows"]
        rolled = cli(data, "rollup", "--json", env=ch_env)
        assert rolled.returncode == 0, rolled.stderr
        compacted = cli(data, "compact", "--json", env=ch_env)  # run by the server too
        assert compacted.returncode == 0, compacted.stderr
        assert json.loads(compacted.stdout)["failed"] == {}
    finally:
        serve.kill(signal.SIGTERM)
    assert online.status_code == 200, online.text
    assert online.json()["rows"] == rows

    for name, folder in (
        ("offline", tmp_path / "offline"),
        ("online", tmp_path / "backups" / "online"),
    ):
        back = tmp_path / f"restored-{name}"
        restored = cli(back, "restore", str(folder), "--json", env=env)
        assert restored.returncode == 0, restored.stderr
        csvs: dict[str, dict[str, bytes]] = {}
        for storage in ("duckdb", "clickhouse"):
            if storage == "clickhouse":
                moved = cli(back, "migrate-storage", "--to", "clickhouse", env=env)
                assert moved.returncode == 0, moved.stderr
            out = back.parent / f"{name}-{storage}.zip"
            exported = cli(back, "export", "example.com", "--format", "plausible", "--out",
                           str(out), env={**env, "AVOCET_STORAGE": storage,
                                          "AVOCET_RAW_RETENTION_DAYS": "100000"})  # fmt: skip
            assert exported.returncode == 0, exported.stderr
            assert tables(out.read_bytes()) == named(EXPECTED)
            # The CSV export reads either store to the same bytes.
            folder_out = back.parent / f"{name}-{storage}-csv"
            as_stored = {**env, "AVOCET_STORAGE": storage, "AVOCET_RAW_RETENTION_DAYS": "100000"}
            csv_done = cli(back, "export", "example.com", "--format", "csv", "--out",
                           str(folder_out), env=as_stored)  # fmt: skip
            assert csv_done.returncode == 0, csv_done.stderr
            csvs[storage] = {f: (folder_out / f).read_bytes() for f in CSV_FILES}
        assert csvs["clickhouse"] == csvs["duckdb"]
        events_csv = list(csv.reader(io.StringIO(csvs["duckdb"]["events.csv"].decode())))
        assert len(events_csv) == 1 + 7  # the header, goatcounter-v2.csv's 7 events
        assert csvs["duckdb"]["daily_stats.csv"].count(b"\n") > 1
