"""Imports (issue #22): a GoatCounter export through `avocet import`, answered by the stats
API with hand-computed numbers; idempotent; bad input names file, line and column and adds
nothing; overlapping days are asked about; a delete removes exactly what was added, on
raw days and on days that are rollups only.

tests/fixtures/imports/goatcounter-v2.csv follows GoatCounter's CSV export, version 2
(columns from arp242/goatcounter export.go, Export.Run; meanings from tpl/help/export.md).
By hand (site in UTC; a visit ends after 30 idle minutes; GoatCounter's Session is the
visitor):
  2025-03-01  s1 10:00 / (Hacker News) + 10:05 /about  -> visit A, 2 pageviews, 300 s
              s2 11:00 / (ref newsletter) + 11:02 event signup -> visit C, 1 pageview + 1
                 custom event (interactive: no bounce), 120 s
              s1 12:00 /pricing (90 idle minutes later)  -> visit B, bounce, 0 s
              a Bot=3 row                                -> skipped
  2025-03-02  s3 09:00 / (NL)   s1 09:00 /about (no location) -> 2 bounces, 0 s
  visitors 2 + 2 = 4 (a visitor lives one day), visits 5, pageviews 6, events 7,
  bounce rate 3/5 = 60 %, visit duration (300 + 120 + 0 + 0 + 0) / 5 = 84 s."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.imports import goatcounter
from app.imports.run import content_hash, delete_import, run_import
from app.services import Services
from app.storage import import_jobs
from app.storage.events import EventStore
from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import ROOT, free_port, read_any, start_live_server, stop_live_server
from tests.stats_env import STORAGES

ON_CLICKHOUSE = STORAGES[1].marks  # skipped where the clickhouse extra is not installed

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
GOAT = FIXTURES / "goatcounter-v2.csv"
RANGE = {"period": "custom", "from": "2025-03-01", "to": "2025-03-02"}
AGGREGATE = "visitors,visits,pageviews,events,bounce_rate,visit_duration"


def cli(
    data: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


class Stats:
    def __init__(self, url: str, site_id: str) -> None:
        self.url, self.site_id = url, site_id

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/v1/stats/{path}", params={"site_id": self.site_id, **RANGE, **params}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def breakdown(self, prop: str) -> list[tuple[Any, int, int, int]]:
        rows = self.get("breakdown", property=prop, metrics="visitors,visits,pageviews")
        return [(r["value"], r["visitors"], r["visits"], r["pageviews"]) for r in rows["results"]]


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path, storage: str) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, storage=storage)) as found:
        yield found


@pytest.fixture(name="storage")
def storage_fixture() -> str:
    """DuckDB's store, unless a test runs on both (parametrized "storage")."""
    return "duckdb"


@pytest.fixture
def stats_of(tmp_path: Path, storage: str) -> Iterator[Any]:
    lives = []

    def start(data: Path) -> Stats:
        settings = Settings(
            data_dir=str(data),
            port=free_port(),
            open_stats_on_loopback=True,
            run_jobs=False,
            storage=storage,
        )
        live = start_live_server(settings)
        lives.append(live)
        return Stats(live.url, live.services.meta.sites()[0].id)

    yield start
    for live in lives:
        stop_live_server(live)


def new_data_dir(tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    data = tmp_path / "data"
    assert cli(data, "site", "add", "example.com", env=env).returncode == 0
    return data


# Days as rollups only / kept raw (on ClickHouse: tests/test_imports_clickhouse.py, both).
@pytest.mark.parametrize("raw_days", ["90", "100000"])
def test_goatcounter_import_answers_the_hand_computed_numbers(
    tmp_path: Path, stats_of: Any, raw_days: str, storage: str
) -> None:
    env = {**_env(storage), "AVOCET_RAW_RETENTION_DAYS": raw_days}
    data = new_data_dir(tmp_path, env)
    done = cli(data, "import", "goatcounter", str(GOAT), "--site", "example.com", "--json", env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "done"
    assert job["summary"] == {
        "rows_read": 8,
        "events_imported": 7,
        "sessions": 5,
        "days": 2,
        "first_day": "2025-03-01",
        "last_day": "2025-03-02",
        "days_as_rollups": 2 if raw_days == "90" else 0,
        "days_overlapping_native_data": 0,
        "skipped": {"bot (GoatCounter's Bot column)": 1},
    }
    # The same export again adds nothing.
    again = cli(
        data, "import", "goatcounter", str(GOAT), "--site", "example.com", "--json", env=env
    )
    assert json.loads(again.stdout)["status"] == "duplicate"
    assert json.loads(again.stdout)["summary"]["duplicate_of"] == job["id"]

    stats = stats_of(data)
    assert stats.get("aggregate", metrics=AGGREGATE)["metrics"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 6,
        "events": 7,
        "bounce_rate": 60.0,
        "visit_duration": 84,
    }
    series = stats.get("timeseries", metrics="visitors,visits,pageviews,bounce_rate,visit_duration")
    assert [tuple(r.values()) for r in series["results"]] == [
        ("2025-03-01T00:00:00.000Z", 2, 3, 4, 33.3, 140),
        ("2025-03-02T00:00:00.000Z", 2, 2, 2, 100.0, 0),
    ]
    assert stats.breakdown("source") == [
        (None, 3, 3, 3),
        ("Hacker News", 1, 1, 2),
        ("newsletter", 1, 1, 1),
    ]
    assert stats.breakdown("country") == [
        ("DE", 1, 1, 1),
        ("NL", 1, 1, 1),
        ("US", 1, 2, 3),
        (None, 1, 1, 1),
    ]
    assert stats.breakdown("page") == [("/", 3, 3, 3), ("/about", 2, 2, 2), ("/pricing", 1, 1, 1)]
    assert stats.breakdown("event") == [("pageview", 4, 5, 6), ("signup", 1, 1, 0)]
    assert stats.breakdown("browser") == [
        ("Firefox", 2, 3, 4),
        ("Chrome", 1, 1, 1),
        ("Safari", 1, 1, 1),
    ]
    assert stats.breakdown("screen") == [("desktop", 3, 4, 5), ("mobile", 1, 1, 1)]


def _env(storage: str = "duckdb") -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AVOCET_")}
    return {**env, "AVOCET_STORAGE": storage}


def test_bad_input_names_file_line_and_column_and_adds_nothing(tmp_path: Path) -> None:
    data = new_data_dir(tmp_path)
    bad = cli(
        data, "import", "goatcounter", str(FIXTURES / "goatcounter-bad-date.csv"), "--site",
        "example.com",
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr == (
        "avocet: goatcounter-bad-date.csv, line 3, column 'Date': 'yesterday' is not valid"
        " (Invalid isoformat string: 'yesterday')\n"
    )
    wrong = tmp_path / "v1.csv"
    wrong.write_text("1Path,Title,Event,Bot,Session,FirstVisit,Referrer\n/,x,false,0,1,true,\n")
    refused = cli(data, "import", "goatcounter", str(wrong), "--site", "example.com")
    assert "v1.csv, line 1: not a GoatCounter CSV export of version 2" in refused.stderr
    listed = json.loads(cli(data, "import", "list", "--json").stdout)
    assert [j["status"] for j in listed] == ["failed", "failed"]
    store = EventStore(data / "events.duckdb")
    try:
        for table in ("events", "imports", "import_days", "import_rollups", "rollup_days"):
            assert store.query(f"SELECT count(*) FROM {table}") == [(0,)], table
    finally:
        store.close()


NATIVE_DAY = date(2025, 3, 1)


def _services(data: Path, raw_days: int, storage: str = "duckdb") -> Services:
    return Services(
        Settings(data_dir=str(data), run_jobs=False, raw_retention_days=raw_days, storage=storage)
    )


def _native(svc: Services, site_id: str) -> None:
    """One live-style pageview (a positive session id) on 2025-03-01 10:30 UTC."""
    ts = int(datetime(2025, 3, 1, 10, 30, tzinfo=UTC).timestamp() * 1e6)
    row = [site_id, ts, (NATIVE_DAY - date(1970, 1, 1)).days, "pageview", 77, 1, "example.com"]
    row += ["/native", "/native", *([None] * 17), None, None, None, True, None, None, None]
    svc.events.append([tuple(row)])


def _import(svc: Services, overlap: str | None) -> import_jobs.ImportJob:
    site = svc.meta.sites()[0]
    job = import_jobs.create_job(
        svc.meta, site.id, "goatcounter", content_hash([GOAT]), [GOAT.name], overlap
    )
    return run_import(
        svc.meta, svc.events, site, job, goatcounter.source(site.domain), [GOAT], raw_days=90
    )


def _daily(svc: Services) -> list[tuple[Any, ...]]:
    return svc.events.query(
        "SELECT day, property, value, visitors, visits, pageviews, events, bounces, duration"
        " FROM daily_stats ORDER BY ALL"
    )


@pytest.mark.parametrize(
    ("pruned", "storage"),
    [(False, "duckdb"), (True, "duckdb"), pytest.param(True, "clickhouse", marks=ON_CLICKHOUSE)],
)
def test_overlap_is_asked_then_skip_or_keep_both_and_delete_restores_exactly(
    tmp_path: Path, pruned: bool, storage: str
) -> None:
    data = new_data_dir(tmp_path)
    svc = _services(data, 90, storage)
    try:
        site = svc.meta.sites()[0]
        _native(svc, site.id)
        from app.query import rollup

        rollup.build_rollups(svc.events, site.id, "UTC", [NATIVE_DAY])
        if pruned:
            rollup.prune(svc.events, site.id, date(2025, 3, 2))
        before = _daily(svc)

        with pytest.raises(Exception) as asked:
            _import(svc, None)
        assert asked.value.args[0] == (
            "1 of the import's 2 days already have data of the site (2025-03-01 .. 2025-03-01):"
            " choose --overlap skip (import only the other days) or --overlap keep-both (add"
            " the import to them)"
        )
        assert _daily(svc) == before

        skipped = _import(svc, "skip")
        assert skipped.summary is not None
        assert skipped.summary["events_imported"] == 2
        assert skipped.summary["skipped"] == {
            "bot (GoatCounter's Bot column)": 1,
            "day already has native data (--overlap skip)": 5,
        }
        day1 = [r for r in _daily(svc) if r[0] == NATIVE_DAY]
        assert day1 == [r for r in before if r[0] == NATIVE_DAY]
        delete_import(svc.meta, svc.events, site, skipped, raw_days=90)
        assert _daily(svc) == before

        both = _import(svc, "keep-both")
        totals = {r[0]: r[3:] for r in _daily(svc) if r[1] == ""}
        # Day 1: the native visit (1 visitor, 1 bounce) plus the import's 2 visitors and
        # 3 visits (4 pageviews, 5 events, 1 bounce, 420 s).
        assert totals[NATIVE_DAY] == (3, 4, 5, 6, 2, 420.0)
        delete_import(svc.meta, svc.events, site, both, raw_days=90)
        assert _daily(svc) == before
        # (The native raw event itself was pruned on the way: its day is past the 90-day
        # raw window and rolled up, as the retention job would have done.)
        assert svc.events.query("SELECT count(*) FROM events WHERE session_id < 0") == [(0,)]
        for table in ("imports", "import_days", "import_rollups"):
            assert svc.events.query(f"SELECT count(*) FROM {table}") == [(0,)], table
        assert [j.status for j in import_jobs.list_jobs(svc.meta)] == [
            "deleted",
            "deleted",
            "failed",
        ]
    finally:
        svc.events.close()
        svc.meta.close()


@pytest.mark.parametrize("storage", STORAGES)
def test_while_the_server_runs_the_cli_imports_through_the_api(world: Any, storage: str) -> None:
    """The in-process server holds the events file: `avocet import` uploads the export to
    POST /api/v1/sites/{id}/imports (202 + job), follows the job, and a delete goes through
    DELETE .../imports/{job}; a viewer's key can't import."""
    owner = world.user("owner@example.com", admin=True)
    site_id = world.site("example.com", owner)
    token = world.key(owner, site_id, ("sites:read", "sites:write"))
    data = Path(world.live.services.settings.data_dir)
    env = _env(storage)
    url = ["--url", world.live.url, "--token", token]
    done = cli(data, "import", "goatcounter", str(GOAT), "--site", site_id, "--json", *url, env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["summary"]["events_imported"]) == ("done", 7)

    http = world.bearer(token)
    listed = http.get(f"/api/v1/sites/{site_id}/imports").json()["imports"]
    assert [(j["id"], j["status"]) for j in listed] == [(job["id"], "done")]
    with GOAT.open("rb") as f:
        again = http.post(
            f"/api/v1/sites/{site_id}/imports",
            data={"source": "goatcounter"},
            files={"file": (GOAT.name, f)},
        )
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "queued"
    for _ in range(100):
        status = http.get(f"/api/v1/sites/{site_id}/imports/{again.json()['id']}").json()
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert (status["status"], status["summary"]["duplicate_of"]) == ("duplicate", job["id"])
    bad = http.post(f"/api/v1/sites/{site_id}/imports", data={"source": "matomo"})
    assert bad.status_code == 400
    assert bad.json() == {
        "error": {
            "code": "invalid_request",
            "message": "source: one of plausible, goatcounter, umami, ga4",
        }
    }

    viewer = world.user("viewer@example.com")
    world.share(site_id, viewer, "viewer")
    refused = world.bearer(world.key(viewer, site_id, ("sites:read", "sites:write"))).post(
        f"/api/v1/sites/{site_id}/imports", data={"source": "goatcounter"}
    )
    assert refused.status_code == 403

    gone = cli(data, "import", "delete", job["id"], "--json", *url, env=env)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["deleted"] == {"events": 0, "days": 2}  # rollups only
    store = world.live.services.events
    for table in ("daily_stats", "rollup_days", "events", "imports", "import_days"):
        found = read_any(store, f"SELECT count(*) FROM {table} WHERE site_id = ?", [site_id])
        assert found == [(0,)], table


@pytest.mark.parametrize(
    ("configured", "used"),
    [("1GB", "256MB"), ("2GiB", "256MB"), ("80%", "256MB"), ("300 MB", "256MB"),
     ("256MB", "256MB"), ("128MB", "128MB"), ("100000KB", "100000KB")],
)  # fmt: skip
def test_an_import_process_caps_the_stores_cache_but_keeps_a_lower_limit(
    configured: str, used: str
) -> None:
    from app.config import DuckDBSettings
    from app.imports.run import import_store_settings

    got = import_store_settings(DuckDBSettings(threads=1, memory_limit=configured))
    assert (got.memory_limit, got.threads) == (used, 1)


@pytest.mark.parametrize(
    ("configured", "used"),
    [("1GB", "128MB"), ("256MB", "128MB"), ("80%", "128MB"), ("100MB", "100MB")],
)
def test_an_import_process_copies_the_events_in_under_a_lower_limit(
    configured: str, used: str
) -> None:
    from app.config import DuckDBSettings
    from app.imports.run import import_copy_limit

    assert import_copy_limit(DuckDBSettings(threads=1, memory_limit=configured)) == used


def test_the_stores_memory_limit_is_lowered_for_a_while_then_the_configured_one(
    tmp_path: Path,
) -> None:
    from app.config import DuckDBSettings

    store = EventStore(tmp_path / "events.duckdb", DuckDBSettings(memory_limit="256MB"))

    def limit() -> str:
        return str(store.query("SELECT current_setting('memory_limit')")[0][0])

    try:
        configured = limit()
        with store.memory_limit("128MB"):
            assert limit() == "122.0 MiB"  # DuckDB shows 128e6 bytes in MiB
        assert limit() == configured == "244.1 MiB"
        with pytest.raises(RuntimeError), store.memory_limit("64MB"):
            raise RuntimeError("the import failed")
        assert limit() == configured
    finally:
        store.close()


def _raw_import(svc: Services, copy_memory_limit: str | None) -> import_jobs.ImportJob:
    """The GoatCounter fixture into the first site, its days kept raw (copied in)."""
    site = svc.meta.sites()[0]
    job = import_jobs.create_job(
        svc.meta, site.id, "goatcounter", content_hash([GOAT]), [GOAT.name], None
    )
    return run_import(
        svc.meta,
        svc.events,
        site,
        job,
        goatcounter.source(site.domain),
        [GOAT],
        raw_days=100_000,
        copy_memory_limit=copy_memory_limit,
    )


def test_an_import_with_a_copy_limit_imports_the_same_and_restores_the_limit(
    tmp_path: Path,
) -> None:
    plain, capped = _services(tmp_path / "plain", 100_000), _services(tmp_path / "capped", 100_000)
    setting = "SELECT current_setting('memory_limit')"
    events = "SELECT ts, pathname, referrer, session_id < 0 FROM events ORDER BY ALL"
    try:
        configured = capped.events.query(setting)
        for svc, limit in ((plain, None), (capped, "64MB")):
            svc.meta.add_site("example.com")
            assert _raw_import(svc, limit).status == "done"
        assert capped.events.query(setting) == configured
        assert _daily(capped) == _daily(plain)
        assert capped.events.query(events) == plain.events.query(events)
        assert len(capped.events.query(events)) == 7  # 6 pageviews and the signup event
    finally:
        for svc in (plain, capped):
            svc.events.close()
            svc.meta.close()
