"""`avocet site delete` and `avocet site reset` (#21): without --yes they only say what
would go; with it they queue the deletion job and show its steps to the end, through the
running server's socket when it runs, else on the files. Real processes throughout."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

from tests.conftest import CHROME_UA, ServeProcess
from tests.test_cli_served import run

SECRET = "zq5-only-here"


def _hit(proc: ServeProcess, site: str, domain: str, path: str) -> None:
    body = {"n": "pageview", "u": f"https://{domain}{path}", "s": site}
    sent = httpx.post(f"{proc.url}/collect", json=body, headers={"User-Agent": CHROME_UA})
    assert sent.status_code == 204


def _events(data: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT site_id, pathname FROM events ORDER BY ALL").fetchall()
        return [(str(s), str(p)) for s, p in rows]
    finally:
        con.close()


def test_site_delete_through_the_running_server_shows_its_steps(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    proc = serve_process
    gone = json.loads(proc.cli("site", "add", "gone.example", "--json").stdout)["id"]
    kept = json.loads(proc.cli("site", "add", "kept.example", "--json").stdout)["id"]
    proc.start()
    for i in range(3):
        _hit(proc, gone, "gone.example", f"/{SECRET}-{i}")
    _hit(proc, kept, "kept.example", "/stays")

    asked = run(proc.data_dir, tmp_path, "site", "delete", "gone.example")
    assert (asked.returncode, asked.stdout, asked.stderr) == (
        1,
        f"deleting site gone.example ({gone}) deletes the site and:\n"
        "  events: 3\n  rolled up days: 0\n  rollup rows: 0\n  usage counters: 0\n"
        "  api keys: 0\n  funnels: 0\n  annotations: 0\n  segments: 0\n  goals: 0\n"
        "  share links: 0\n"
        "  invitations: 0\n"
        "  members: 0\n  salts: 1\n  exclusions: 0\n  email reports: 0\n"
        "  traffic alerts: 0\n  privacy requests: 0\n",
        "nothing deleted: run it again with --yes to delete all of this\n",
    )
    done = run(proc.data_dir, tmp_path, "site", "delete", gone, "--yes")
    assert done.returncode == 0, done.stderr
    [queued, *steps] = done.stderr.splitlines()
    assert queued.startswith("deletion pr_") and queued.endswith(" queued")
    assert steps == [
        "  events, rollups and counters deleted",
        "  keys, goals, funnels, share links, members, report lists and salts deleted",
        "  events file rewritten (no deleted byte left on disk)",
    ]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"site gone.example ({gone}) deleted (request pr_")
    assert "  events: 3" in lines and "  site: 1" in lines and "  salts: 1" in lines
    # The server knew at once: the deleted site's hits are dropped, the other's still kept.
    _hit(proc, gone, "gone.example", f"/{SECRET}-late")
    _hit(proc, kept, "kept.example", "/stays-too")
    listed = json.loads(run(proc.data_dir, tmp_path, "site", "list", "--json").stdout)
    assert [s["domain"] for s in listed] == ["kept.example"]
    again = run(proc.data_dir, tmp_path, "site", "delete", gone, "--yes")
    assert (again.returncode, again.stderr) == (2, f"avocet: no site with id or domain {gone!r}\n")
    proc.kill(signal.SIGTERM)
    assert _events(proc.data_dir) == [(kept, "/stays"), (kept, "/stays-too")]
    for path in proc.data_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_site_reset_of_a_range_without_a_server(
    serve_process: ServeProcess, tmp_path: Path
) -> None:
    proc = serve_process
    site = json.loads(proc.cli("site", "add", "reset.example", "--json").stdout)["id"]
    proc.start()
    for i in range(3):
        _hit(proc, site, "reset.example", f"/page-{i}")
    proc.kill(signal.SIGTERM)
    assert len(_events(proc.data_dir)) == 3
    data = proc.data_dir
    bad = run(data, tmp_path, "site", "reset", site, "--from", "2026-02-03", "--to", "2026-02-01")
    assert (bad.returncode, bad.stderr) == (2, "avocet: --from: must not be after --to\n")
    badday = run(data, tmp_path, "site", "reset", site, "--from", "yesterday")
    assert (badday.returncode, badday.stderr) == (
        2,
        "avocet: --from: use a date like 2026-01-31\n",
    )
    today = datetime.now(UTC).date()
    first = (today + timedelta(days=1)).isoformat()
    none = run(data, tmp_path, "site", "reset", "reset.example", "--from", first, "--json")
    assert (none.returncode, json.loads(none.stdout)) == (
        1,
        {"deleted": False, "would_delete": {"events": 0, "rolled_up_days": 0, "rollup_rows": 0}},
    )
    day = today.isoformat()
    args = ("--from", day, "--to", day, "--yes", "--json")
    everything = run(data, tmp_path, "site", "reset", "reset.example", *args)
    assert everything.returncode == 0, everything.stderr
    body = json.loads(everything.stdout)
    assert (body["type"], body["status"], body["events_deleted"], body["from"], body["to"]) == (
        "reset_stats",
        "done",
        3,
        day,
        day,
    )
    assert body["step"] == "rewrite"
    assert everything.stderr.splitlines()[1:] == [
        "  events, rollups and counters deleted",
        "  events file rewritten (no deleted byte left on disk)",
    ]
    assert _events(data) == []
    listed = json.loads(run(data, tmp_path, "site", "list", "--json").stdout)
    assert [s["domain"] for s in listed] == ["reset.example"]  # the site stays
