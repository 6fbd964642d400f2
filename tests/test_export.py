"""`avocet export SITE --format plausible` and GET /api/v1/sites/{id}/export: Plausible's CSV
export layout (the tables and column order of plausible/analytics lib/plausible/exports.ex,
export_*_q; file names as lib/plausible/imported/csv_importer.ex parse_filename!/1 reads
them), with numbers computed by hand from tests/fixtures/imports/goatcounter-v2.csv (its
visits are worked out in tests/test_imports.py's docstring):

  2025-03-01  visit A: s1 10:00 / (Hacker News, US-TX, Firefox 121, Windows 10)
                       + 10:05 /about            2 pageviews, 300 s
              visit C: s2 11:00 / (newsletter, DE, Chrome 120, iOS 17.2)
                       + 11:02 signup event       1 pageview, 120 s, no bounce
              visit B: s1 12:00 /pricing          bounce, 0 s
  2025-03-02  s3 09:00 / (NL, Safari 17.1, macOS 14.1), s1 09:00 /about: two bounces"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.accounts_fixtures import world_fixture  # noqa: F401
from tests.conftest import ROOT, ServeProcess, free_port
from tests.stats_env import STORAGES
from tests.test_imports import GOAT, _env, cli, new_data_dir

NAMES = (
    "visitors", "sources", "pages", "entry_pages", "exit_pages", "custom_events",
    "locations", "devices", "browsers", "operating_systems",
)  # fmt: skip
SUFFIX = "_20250301_20250302.csv"
EXPECTED = {
    "imported_visitors": [
        "date,visitors,pageviews,bounces,visits,visit_duration",
        "2025-03-01,2,4,1,3,420",
        "2025-03-02,2,2,2,2,0",
    ],
    "imported_sources": [
        "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,"
        "pageviews,visitors,visits,visit_duration,bounces",
        "2025-03-01,,,,,,,,1,1,1,0,1",
        "2025-03-01,Hacker News,news.ycombinator.com,,,,,,2,1,1,300,0",
        "2025-03-01,newsletter,,,,,,,1,1,1,120,0",
        "2025-03-02,,,,,,,,2,2,2,0,2",
    ],
    "imported_pages": [
        "date,hostname,page,visits,visitors,pageviews,total_scroll_depth,"
        "total_scroll_depth_visits,total_time_on_page,total_time_on_page_visits",
        "2025-03-01,example.com,/,2,2,2,0,0,0,0",
        "2025-03-01,example.com,/about,1,1,1,0,0,0,0",
        "2025-03-01,example.com,/pricing,1,1,1,0,0,0,0",
        "2025-03-02,example.com,/,1,1,1,0,0,0,0",
        "2025-03-02,example.com,/about,1,1,1,0,0,0,0",
    ],
    "imported_entry_pages": [
        "date,entry_page,visitors,entrances,visit_duration,bounces,pageviews",
        "2025-03-01,/,2,2,420,0,3",
        "2025-03-01,/pricing,1,1,0,1,1",
        "2025-03-02,/,1,1,0,1,1",
        "2025-03-02,/about,1,1,0,1,1",
    ],
    "imported_exit_pages": [
        "date,exit_page,visitors,visit_duration,exits,bounces,pageviews",
        "2025-03-01,/,1,120,1,0,1",
        "2025-03-01,/about,1,300,1,0,2",
        "2025-03-01,/pricing,1,0,1,1,1",
        "2025-03-02,/,1,0,1,1,1",
        "2025-03-02,/about,1,0,1,1,1",
    ],
    "imported_custom_events": [
        "date,name,link_url,path,visitors,events",
        "2025-03-01,signup,,,1,1",
    ],
    "imported_locations": [
        "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews",
        "2025-03-01,DE,,0,1,1,120,0,1",
        "2025-03-01,US,US-TX,0,1,2,300,1,3",
        "2025-03-02,NL,,0,1,1,0,1,1",
    ],
    # GoatCounter gives no user agent, so no device (Plausible's device is a screen class).
    "imported_devices": [
        "date,device,visitors,visits,visit_duration,bounces,pageviews",
        "2025-03-01,,2,3,420,1,4",
        "2025-03-02,,2,2,0,2,2",
    ],
    "imported_browsers": [
        "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews",
        "2025-03-01,Chrome,120,1,1,120,0,1",
        "2025-03-01,Firefox,121,1,2,300,1,3",
        "2025-03-02,Firefox,121,1,1,0,1,1",
        "2025-03-02,Safari,17.1,1,1,0,1,1",
    ],
    "imported_operating_systems": [
        "date,operating_system,operating_system_version,visitors,visits,visit_duration,"
        "bounces,pageviews",
        "2025-03-01,Windows,10,1,2,300,1,3",
        "2025-03-01,iOS,17.2,1,1,120,0,1",
        "2025-03-02,Windows,10,1,1,0,1,1",
        "2025-03-02,macOS,14.1,1,1,0,1,1",
    ],
}
# Days past the raw window are rollups only, one property a row: the columns a table holds
# besides its first property are empty there (and days without events still none).
ROLLED = {
    **EXPECTED,
    "imported_sources": [
        EXPECTED["imported_sources"][0],
        "2025-03-01,,,,,,,,1,1,1,0,1",
        "2025-03-01,Hacker News,,,,,,,2,1,1,300,0",
        "2025-03-01,newsletter,,,,,,,1,1,1,120,0",
        "2025-03-02,,,,,,,,2,2,2,0,2",
    ],
    "imported_locations": [
        EXPECTED["imported_locations"][0],
        "2025-03-01,DE,,0,1,1,120,0,1",
        "2025-03-01,US,,0,1,2,300,1,3",
        "2025-03-02,NL,,0,1,1,0,1,1",
    ],
    "imported_browsers": [
        EXPECTED["imported_browsers"][0],
        "2025-03-01,Chrome,,1,1,120,0,1",
        "2025-03-01,Firefox,,1,2,300,1,3",
        "2025-03-02,Firefox,,1,1,0,1,1",
        "2025-03-02,Safari,,1,1,0,1,1",
    ],
    "imported_operating_systems": [
        EXPECTED["imported_operating_systems"][0],
        "2025-03-01,Windows,,1,2,300,1,3",
        "2025-03-01,iOS,,1,1,120,0,1",
        "2025-03-02,Windows,,1,1,0,1,1",
        "2025-03-02,macOS,,1,1,0,1,1",
    ],
}


def tables(archive: bytes) -> dict[str, list[str]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return {n: z.read(n).decode().splitlines() for n in z.namelist()}


def named(expected: dict[str, list[str]], suffix: str = SUFFIX) -> dict[str, list[str]]:
    return {f"{table}{suffix}": lines for table, lines in expected.items()}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize(("raw_days", "expected"), [("100000", EXPECTED), ("90", ROLLED)])
def test_plausible_export_holds_the_hand_computed_tables_when_days_are_raw_or_rolled(
    tmp_path: Path, raw_days: str, expected: dict[str, list[str]], storage: str
) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": raw_days}
    imported = cli(data, "import", "goatcounter", str(GOAT), "--site", "example.com", env=env)
    assert imported.returncode == 0, imported.stderr
    if storage == "clickhouse":  # imports need DuckDB: the import's events move over
        moved = cli(data, "migrate-storage", "--to", "clickhouse", "--json", env=env)
        assert moved.returncode == 0, moved.stderr
        env["AVOCET_STORAGE"] = "clickhouse"
        (data / "events.duckdb").unlink()  # the export can only have read ClickHouse
    out = tmp_path / "out.zip"
    done = cli(
        data, "export", "example.com", "--format", "plausible", "--out", str(out), "--json",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["from"], summary["to"]) == ("2025-03-01", "2025-03-02")
    assert summary["rows"] == {f"imported_{n}": len(expected[f"imported_{n}"]) - 1 for n in NAMES}
    assert list(tables(out.read_bytes())) == [f"imported_{n}{SUFFIX}" for n in NAMES]
    assert tables(out.read_bytes()) == named(expected)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    if storage == "clickhouse" and raw_days == "90":  # and from a server on ClickHouse
        user = subprocess.run(
            [sys.executable, "-m", "app.cli", "--data-dir", str(data), "user", "create",
             "admin@example.com", "--admin", "--password-stdin"],
            input="a long enough password 123\n", capture_output=True, text=True, env=env,
            cwd=ROOT, check=False,
        )  # fmt: skip
        assert user.returncode == 0, user.stderr
        key = cli(data, "key", "create", "--all-sites", "--scopes", "stats:read", "--json",
                  env=env)  # fmt: skip
        assert key.returncode == 0, key.stderr
        served = ServeProcess(data, free_port(), extra_env={"AVOCET_STORAGE": "clickhouse"})
        served.start()
        try:
            site_id = json.loads(cli(data, "site", "list", "--json", env=env).stdout)[0]["id"]
            whole = httpx.get(
                f"{served.url}/api/v1/sites/{site_id}/export",
                headers={"Authorization": f"Bearer {json.loads(key.stdout)['token']}"},
            )
            assert whole.status_code == 200, whole.text
            assert tables(whole.content) == named(expected)
        finally:
            served.kill()


def test_while_the_server_runs_the_export_streams_from_the_api(world: Any) -> None:
    """GET /api/v1/sites/{id}/export answers the zip (any range); `avocet export --format
    plausible` goes through it while the server holds the events file."""
    owner = world.user("owner@example.com", admin=True)
    site_id = world.site("example.com", owner)
    token = world.key(owner, site_id, ("sites:read", "sites:write", "stats:read"))
    data = Path(world.live.services.settings.data_dir)
    url = ["--url", world.live.url, "--token", token]
    done = cli(data, "import", "goatcounter", str(GOAT), "--site", site_id, "--json", *url)
    assert done.returncode == 0, done.stderr

    http = world.bearer(token)
    whole = http.get(f"/api/v1/sites/{site_id}/export")
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "application/zip"
    today = world.live.services.clock().astimezone(world.live.services.sites.by_id(site_id).zone)
    assert whole.headers["content-disposition"] == (
        f'attachment; filename="example_com_{today:%Y%m%d}.zip"'
    )
    # Rows past the raw window are rollups only (the default window is shorter than the
    # fixture's age).
    assert tables(whole.content) == named(ROLLED)

    day2 = http.get(f"/api/v1/sites/{site_id}/export", params={"from": "2025-03-02"})
    suffix = "_20250302_20250302.csv"
    assert tables(day2.content) == named(
        {t: [lines[0], *(r for r in lines[1:] if r.startswith("2025-03-02"))]
         for t, lines in ROLLED.items()},
        suffix,
    )  # fmt: skip

    out = Path(str(data) + "-export.zip")
    through = cli(data, "export", site_id, "--format", "plausible", "--out", str(out), *url)
    assert through.returncode == 0, through.stderr
    assert tables(out.read_bytes()) == named(ROLLED)

    for params, message in (
        ({"format": "csv"}, "format: plausible (the raw CSV export is avocet export)"),
        ({"from": "2025-03-03", "to": "2025-03-01"}, "from: must not be after to"),
        ({"from": "yesterday"}, "from must be a date in YYYY-MM-DD format"),
    ):
        bad = http.get(f"/api/v1/sites/{site_id}/export", params=params)
        assert bad.status_code == 400
        assert bad.json() == {"error": {"code": "invalid_request", "message": message}}
    viewer = world.user("viewer@example.com")
    world.share(site_id, viewer, "viewer")
    assert (
        world.bearer(world.key(viewer, site_id, ("stats:read",)))
        .get(f"/api/v1/sites/{site_id}/export")
        .status_code
        == 200
    )  # a viewer reads the stats, so the export too
    other = world.site("other.example", owner)
    assert http.get(f"/api/v1/sites/{other}/export").status_code == 403  # key bound to a site
