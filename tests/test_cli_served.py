"""CLI commands while `avocet serve` runs (#19 item 4): the server holds the events file,
so doctor, export, backup, rollup, prune and compact are run by the server for the CLI
over <data_dir>/avocet.sock (owner-only), with the CLI's output, progress and exit codes,
and no token. Real processes: the server and each command are subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CHROME_UA, ROOT, ServeProcess


def run(data: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`avocet ARGS` from `cwd` (relative paths are the CLI's, not the server's)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


@pytest.fixture
def serving(serve_process: ServeProcess, tmp_path: Path) -> tuple[ServeProcess, str]:
    """A running server with one site and two pageviews."""
    site = json.loads(serve_process.cli("site", "add", "example.com", "--json").stdout)["id"]
    serve_process.start()
    for path in ("/", "/pricing"):
        body = {"n": "pageview", "u": f"https://example.com{path}", "s": site}
        sent = httpx.post(
            f"{serve_process.url}/collect", json=body, headers={"User-Agent": CHROME_UA}
        )
        assert sent.status_code == 204
    return serve_process, site


def test_socket_is_owner_only_and_gone_when_the_server_stops(
    serving: tuple[ServeProcess, str],
) -> None:
    proc, _ = serving
    sock = proc.data_dir / "avocet.sock"
    mode = sock.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(proc.data_dir.stat().st_mode) == 0o700
    proc.kill(signal.SIGTERM)
    assert not sock.exists()


def test_doctor_and_export_run_by_the_server_when_it_holds_the_file(
    serving: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    proc, _ = serving
    doctor = run(proc.data_dir, tmp_path, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert (report["healthy"], report["events"]["rows"]["events"]) == (True, 2)
    export = run(proc.data_dir, tmp_path, "export", "example.com", "--progress")
    assert export.returncode == 0, export.stderr
    out = tmp_path / "export-example.com"  # relative to the CLI's directory
    assert export.stdout.splitlines() == [
        f"{out}/events.csv: 2 rows",
        f"{out}/daily_stats.csv: 0 rows",
    ]
    assert "events: 2 rows..." in export.stderr  # progress, streamed from the server
    lines = (out / "events.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("site_id,")
    assert stat.S_IMODE((out / "events.csv").stat().st_mode) == 0o600
    missing = run(proc.data_dir, tmp_path, "export", "nope.example")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        "avocet: no site with id or domain 'nope.example'\n",
    )


def test_backup_without_token_while_serving_restores_to_a_healthy_copy(
    serving: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    proc, _ = serving
    env_token = os.environ.pop("AVOCET_TOKEN", None)
    try:
        made = run(proc.data_dir, tmp_path, "backup", "nightly", "--json")
    finally:
        if env_token is not None:
            os.environ["AVOCET_TOKEN"] = env_token
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert (result["dest"], result["via"], result["rows"]["events"]) == (
        str(tmp_path / "nightly"),
        "server",
        2,
    )
    restored = tmp_path / "restored"
    back = run(restored, tmp_path, "restore", str(tmp_path / "nightly"))
    assert back.returncode == 0, back.stderr
    doctor = json.loads(run(restored, tmp_path, "doctor", "--json").stdout)
    assert (doctor["healthy"], doctor["events"]["rows"]["events"]) == (True, 2)


def test_lifecycle_jobs_run_by_the_server_when_it_holds_the_file(
    serving: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    proc, site = serving
    rollup = run(proc.data_dir, tmp_path, "rollup", "--json")
    assert (rollup.returncode, json.loads(rollup.stdout)) == (
        0,
        {"done": {site: 0}, "failed": {}},
    )  # today is not finished: nothing to roll up yet
    prune = run(proc.data_dir, tmp_path, "prune", "--dry-run")
    assert (prune.returncode, prune.stdout) == (0, "example.com: 0 raw events would be deleted\n")
    compact = run(proc.data_dir, tmp_path, "compact")
    assert (compact.returncode, compact.stdout) == (0, "0 days compacted (0 events)\n")
    # The server went on serving.
    assert httpx.get(f"{proc.url}/e/live/{site}").json() == {"visitors": 1}


def test_cli_opens_the_files_itself_when_a_killed_server_left_its_socket(
    serving: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    proc, _ = serving
    proc.kill(signal.SIGKILL)
    assert (proc.data_dir / "avocet.sock").exists()  # nobody listens on it
    made = run(proc.data_dir, tmp_path, "backup", "after-crash", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["via"] == "files"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_server_refuses_another_user_even_when_modes_are_loosened(
    serving: tuple[ServeProcess, str],
) -> None:
    proc, _ = serving
    proc.data_dir.chmod(0o755)
    (proc.data_dir / "avocet.sock").chmod(0o777)
    # The client holds the data dir open, becomes `nobody`, then connects through the open
    # directory (the test's temp folders above it are root's only).
    client = (
        "import os, socket, sys\n"
        "fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(f'/proc/self/fd/{fd}/avocet.sock')\n"
        "try:\n"
        '    s.sendall(b\'{"argv": ["doctor"], "cwd": "/"}\\n\')\n'
        "    print(repr(s.recv(1000)))\n"
        "except (ConnectionResetError, BrokenPipeError):\n"
        "    print('closed')\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", client, str(proc.data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    proc.data_dir.chmod(0o700)
    # Closed unanswered: no output, no exit code (a reset, or a broken pipe, when the
    # server closed before reading).
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout in ("b''\n", "closed\n")


def test_request_that_is_not_json_is_ignored(serving: tuple[ServeProcess, str]) -> None:
    proc, _ = serving
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(proc.data_dir / "avocet.sock"))
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert s.recv(1000) == b""
    assert httpx.get(f"{proc.url}/api/health").status_code == 200


def test_site_rename_reaches_the_running_server_at_once(
    serving: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    proc, site = serving
    renamed = run(proc.data_dir, tmp_path, "site", "rename", "example.com", "shop.example.org")
    assert (renamed.returncode, renamed.stdout, renamed.stderr) == (
        0,
        f"site {site} is now shop.example.org (name: shop.example.org)\n",
        "",
    )
    # Plausible's Events API finds the site by its new domain, and not by the old one.
    ua = {"User-Agent": CHROME_UA}
    for domain, dropped in (("shop.example.org", None), ("example.com", "1")):
        body = {"name": "pageview", "url": f"https://{domain}/x", "domain": domain}
        sent = httpx.post(f"{proc.url}/api/event", json=body, headers=ua)
        assert (sent.status_code, sent.headers.get("x-plausible-dropped")) == (202, dropped)
    listed = json.loads(run(proc.data_dir, tmp_path, "site", "list", "--json").stdout)
    assert [(s["domain"], s["name"]) for s in listed] == [("shop.example.org", "shop.example.org")]
    by_hand = run(proc.data_dir, tmp_path, "site", "rename", site, "shop.example.net",
                  "--name", "The shop", "--json")  # fmt: skip
    assert json.loads(by_hand.stdout)["name"] == "The shop"
    missing = run(proc.data_dir, tmp_path, "site", "rename", "nope.test", "x.test")
    assert (missing.returncode, missing.stderr) == (
        2,
        "avocet: no site with id or domain 'nope.test'\n",
    )


def test_site_rename_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, tmp_path, "site", "add", "old.test", "--name", "Kept")
    renamed = run(data, tmp_path, "site", "rename", "old.test", "new.test", "--json")
    assert renamed.returncode == 0, renamed.stderr
    assert (json.loads(renamed.stdout)["domain"], json.loads(renamed.stdout)["name"]) == (
        "new.test",
        "Kept",
    )
