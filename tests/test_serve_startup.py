"""`avocet serve` refuses a data dir whose two stores don't belong together, and says why
in one line on stderr (exit 2), never with a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from app.storage.meta import MetaStore
from tests.conftest import CHROME_UA, ROOT, ServeProcess, free_port


def serve(data: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run `avocet serve` to its end (a refused start ends at once)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "serve", "--port", str(port)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AVOCET_LOG_LEVEL": "warning"},
        timeout=60,
        check=False,
    )


def with_events(serve_process: ServeProcess, n: int = 3) -> Path:
    """A data dir that has served events, the server stopped."""
    added = serve_process.cli("site", "add", "example.com", "--json")
    assert added.returncode == 0, added.stderr
    site = json.loads(added.stdout)["id"]
    serve_process.start()
    with httpx.Client(base_url=serve_process.url, headers={"User-Agent": CHROME_UA}) as http:
        for i in range(n):
            body = {"n": "pageview", "u": f"https://example.com/{i}", "s": site}
            assert http.post("/collect", content=json.dumps(body)).status_code == 204
    serve_process.kill(signal.SIGTERM)
    return serve_process.data_dir


def event_count(data: Path) -> int:
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else -1
    finally:
        con.close()


def orphaned(data: Path) -> str:
    return (
        f"avocet: {data}/meta.sqlite3 is missing or empty, but {data}/events.duckdb holds"
        " events: refusing to start a new instance over them (its first-run setup would be"
        " open to anyone). Put the file back, or restore both from a backup with"
        " `avocet restore BACKUP`\n"
    )


@pytest.mark.parametrize("damage", ["deleted", "truncated", "replaced by a new one"])
def test_serve_refuses_events_without_their_meta_when_meta_is(
    serve_process: ServeProcess, damage: str
) -> None:
    data = with_events(serve_process)
    meta = data / "meta.sqlite3"
    for name in ("meta.sqlite3-wal", "meta.sqlite3-shm"):
        (data / name).unlink(missing_ok=True)
    if damage == "deleted":
        meta.unlink()
    elif damage == "truncated":
        meta.write_bytes(b"")
    else:
        meta.unlink()
        MetaStore(meta).close()  # a valid, freshly migrated store: no sites, no users

    done = serve(data, serve_process.port)
    assert (done.returncode, done.stderr, done.stdout) == (2, orphaned(data), "")
    assert meta.exists() == (damage != "deleted")  # a refused start creates nothing
    assert event_count(data) == 3
    setup = httpx.Client(base_url=serve_process.url)
    with pytest.raises(httpx.ConnectError):  # nobody listens: first-run setup is not open
        setup.get("/setup")


def test_serve_refuses_meta_whose_events_store_is_gone(serve_process: ServeProcess) -> None:
    data = with_events(serve_process)
    (data / "events.duckdb").unlink()
    (data / "events.duckdb.wal").unlink(missing_ok=True)

    done = serve(data, serve_process.port)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"avocet: {data}/events.duckdb is missing or empty, but {data}/meta.sqlite3 belongs"
        " to an instance that had events: refusing to start an empty one. Put the file back,"
        " or restore both from a backup with `avocet restore BACKUP`\n"
    )
    assert not (data / "events.duckdb").exists()


def test_serve_starts_when_sites_were_added_before_the_first_start(
    serve_process: ServeProcess,
) -> None:
    """The usual first steps (a site added by the CLI, then serve) are not a lost store;
    nor is a restart before any event arrived."""
    assert serve_process.cli("site", "add", "example.com").returncode == 0
    assert not (serve_process.data_dir / "events.duckdb").exists()
    serve_process.start()
    serve_process.kill(signal.SIGTERM)
    serve_process.start()
    serve_process.kill(signal.SIGTERM)


def test_serve_says_in_one_line_that_another_process_holds_the_events_file(
    serve_process: ServeProcess,
) -> None:
    data = with_events(serve_process)
    holder = duckdb.connect(str(data / "events.duckdb"))  # as a second server would
    try:
        done = serve(data, serve_process.port)
    finally:
        holder.close()
    assert (done.returncode, done.stdout) == (2, "")
    held = f"{data}/events.duckdb is in use by another process (is `avocet serve` running?)"
    assert done.stderr == f"avocet: {held}\n"


def served_log(tmp_path: Path, port: int, level: str) -> str:
    """What `avocet serve` at this log level writes to stderr from its start to a SIGTERM,
    one request for a missing page and one health check in between."""
    log = tmp_path / f"{level}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data"), "serve"],
            cwd=ROOT,
            env={**os.environ, "AVOCET_LOG_LEVEL": level, "AVOCET_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(400):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            assert httpx.get(f"http://127.0.0.1:{port}/nope").status_code == 404
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)  # (uvicorn ends by raising the signal again)
    return log.read_text()


def test_log_level_is_what_every_logger_keeps_to_in_one_format(tmp_path: Path) -> None:
    """log_level = "warning" leaves a quiet start and stop quiet (no INFO line of Litestar's
    or the scheduler's); at "info" every line has the one format, and the scheduler's
    line per job is left out."""
    port = free_port()
    assert served_log(tmp_path, port, "warning") == ""
    lines = served_log(tmp_path, port, "info").splitlines()
    assert f"INFO avocet: avocet ready, data in {tmp_path / 'data'}" in lines
    assert all(line.startswith("INFO") for line in lines), lines
    assert not [line for line in lines if "apscheduler" in line or " - " in line], lines


def test_an_unknown_log_level_is_a_configuration_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data"), "serve"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AVOCET_LOG_LEVEL": "loud"},
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("avocet: invalid configuration: Invalid enum value 'loud'")
