"""Umami imports (issue #22): its tables as CSV files, and its PostgreSQL database read
through `--from-db` on a real PostgreSQL loaded with Umami's own migrations; the stats API
answers the hand-computed numbers.

tests/fixtures/umami/*.csv are rows of Umami v3.1.0's tables (columns from
umami-software/umami prisma/schema.prisma and prisma/migrations/*/migration.sql, which are
vendored in tests/fixtures/umami/migrations/ and load them into PostgreSQL below):
website_event.csv, session.csv, event_data.csv, revenue.csv.

By hand (site in UTC; Umami's session = the visitor, its visit_id = the visit):
  2025-03-01  S1 visit 1: 10:00 / (from news.ycombinator.com) , 10:05 /pricing,
                          10:06 signup {plan: pro, seats: 3}, 10:07 purchase {plan: pro}
                          with a revenue row of 49.99 USD          -> 420 s, no bounce
              S2 visit 2: 11:00:00.25 /?utm_source=newsletter&utm_medium=email -> bounce
              S1 visit 3: 15:00 /docs (from www.google.com) -> bounce; 15:00:30 a link
                          event (event_type 3) -> skipped
  2025-03-02  S3 visit 4: 09:00 /docs, 09:01:30 /docs/install       -> 90 s
              S2 visit 5: 20:00 /pricing, 20:10 purchase with event data revenue 20,
                          currency EUR (Umami v2's way)            -> 600 s, no bounce
              another website's event                              -> skipped (--website)
  visitors: day 1 {S1, S2}, day 2 {S3, S2} -> 4 (a visitor lives one day); visits 5;
  pageviews 7; events 10; bounce rate 2/5 = 40 %; visit duration (420+0+0+90+600)/5 = 222 s.
  Sessions: S1 chrome / Windows 10 / desktop / 1920x1080 / US, US-CA, San Francisco;
  S2 ios (Safari) / iOS / mobile / 390x844 / DE; S3 firefox / Linux / laptop (a desktop
  device, screen class laptop) / 1366x768 / NL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.storage.events import EventStore
from tests.accounts_fixtures import world_fixture  # noqa: F401
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.test_imports import Stats, _env, cli, new_data_dir

FIXTURES = Path(__file__).parent / "fixtures" / "umami"
TABLES = [FIXTURES / f"{t}.csv" for t in ("website_event", "session", "event_data", "revenue")]
WEBSITE = "6a3e0f64-1c2b-4d8e-9f10-2b3c4d5e6f70"
OTHER = "9b8a7c6d-0000-4000-8000-000000000099"
AGGREGATE = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
SUMMARY = {
    "rows_read": 12,
    "events_imported": 10,
    "sessions": 5,
    "days": 2,
    "first_day": "2025-03-01",
    "last_day": "2025-03-02",
    "days_as_rollups": 0,
    "days_overlapping_native_data": 0,
    "skipped": {
        "Umami event_type 3 (links, pixels, performance: not pages)": 1,
        "another Umami website's rows (--website)": 1,
    },
}


@pytest.fixture
def stats_of() -> Iterator[Any]:
    """A live server over a data dir, keeping raw events of any age (revenue, props and
    cities are answered from raw events)."""
    lives = []

    def start(data: Path) -> Stats:
        settings = Settings(
            data_dir=str(data),
            port=free_port(),
            open_stats_on_loopback=True,
            run_jobs=False,
            raw_retention_days=100_000,
        )
        live = start_live_server(settings)
        lives.append(live)
        return Stats(live.url, live.services.meta.sites()[0].id)

    yield start
    for live in lives:
        stop_live_server(live)


def assert_hand_computed(stats: Any) -> None:
    assert stats.get("aggregate", metrics=AGGREGATE)["metrics"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 7,
        "events": 10,
        "bounce_rate": 40.0,
        "visit_duration": 222,
    }
    series = stats.get("timeseries", metrics="visitors,visits,pageviews,bounce_rate,visit_duration")
    assert [tuple(r.values()) for r in series["results"]] == [
        ("2025-03-01T00:00:00.000Z", 2, 3, 4, 66.7, 140),
        ("2025-03-02T00:00:00.000Z", 2, 2, 3, 0.0, 345),
    ]
    assert sorted(stats.breakdown("source"), key=str) == sorted(
        [(None, 2, 2, 3), ("Google", 1, 1, 1), ("Hacker News", 1, 1, 2), ("newsletter", 1, 1, 1)],
        key=str,
    )
    assert sorted(stats.breakdown("page"), key=str) == sorted(
        [("/", 2, 2, 2), ("/pricing", 2, 2, 2), ("/docs", 2, 2, 2), ("/docs/install", 1, 1, 1)],
        key=str,
    )
    assert sorted(stats.breakdown("country"), key=str) == sorted(
        [("US", 1, 2, 3), ("DE", 2, 2, 2), ("NL", 1, 1, 2)], key=str
    )
    assert sorted(stats.breakdown("device"), key=str) == [("desktop", 2, 3, 5), ("mobile", 2, 2, 2)]
    assert sorted(stats.breakdown("screen"), key=str) == [
        ("desktop", 1, 2, 3),
        ("laptop", 1, 1, 2),
        ("mobile", 2, 2, 2),
    ]
    assert sorted(stats.breakdown("browser"), key=str) == [
        ("Chrome", 1, 2, 3),
        ("Firefox", 1, 1, 2),
        ("Safari", 2, 2, 2),
    ]
    assert sorted(stats.breakdown("os"), key=str) == [
        ("GNU/Linux", 1, 1, 2),
        ("Windows", 1, 2, 3),
        ("iOS", 2, 2, 2),
    ]
    assert sorted(stats.breakdown("event"), key=str) == [
        ("pageview", 4, 5, 7),
        ("purchase", 2, 2, 0),
        ("signup", 1, 1, 0),
    ]
    assert sorted(stats.breakdown("utm_medium"), key=str) == [("email", 1, 1, 1), (None, 3, 4, 6)]
    plan = stats.get("breakdown", property="prop:plan", metrics="visitors,events")["results"]
    assert [(r["value"], r["visitors"], r["events"]) for r in plan if r["value"]] == [("pro", 1, 2)]
    seats = stats.get("breakdown", property="prop:seats", metrics="events")["results"]
    assert [(r["value"], r["events"]) for r in seats if r["value"]] == [("3", 1)]
    revenue = stats.get("breakdown", property="currency", metrics="revenue,events")["results"]
    assert sorted((r["value"] or "", r["revenue"], r["events"]) for r in revenue) == [
        ("", 0.0, 8),
        ("EUR", 20.0, 1),
        ("USD", 49.99, 1),
    ]
    cities = stats.get("breakdown", property="city", metrics="visitors", country="US")["results"]
    assert [(r["value"], r["visitors"]) for r in cities] == [("San Francisco", 1)]
    regions = stats.get("breakdown", property="region", metrics="visitors", country="DE")
    assert [(r["value"], r["visitors"]) for r in regions["results"]] == [("DE-BE", 2)]


def _count_rows(data: Path) -> list[tuple[Any, ...]]:
    store = EventStore(data / "events.duckdb")
    try:
        return [
            store.query(f"SELECT count(*) FROM {table}")[0]
            for table in ("events", "imports", "import_days", "import_rollups", "rollup_days")
        ]
    finally:
        store.close()


def test_umami_csv_import_answers_the_hand_computed_numbers(tmp_path: Path, stats_of: Any) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    files = [str(p) for p in TABLES]
    # Two websites in the export: the user must pick one.
    asked = cli(data, "import", "umami", *files, "--site", "example.com", env=env)
    assert asked.returncode == 2
    assert asked.stderr == (
        "avocet: website_event.csv, line 13, column 'website_id': the export holds several"
        f" Umami websites ({WEBSITE}, {OTHER}): choose one with --website UUID\n"
    )
    args = ["import", "umami", *files, "--site", "example.com", "--website", WEBSITE, "--json"]
    done = cli(data, *args, env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["summary"]) == ("done", SUMMARY)
    again = json.loads(cli(data, *args, env=env).stdout)
    assert (again["status"], again["summary"]["duplicate_of"]) == ("duplicate", job["id"])

    stats = stats_of(data)
    assert_hand_computed(stats)


def test_umami_delete_removes_exactly_what_it_added_and_bad_rows_add_nothing(
    tmp_path: Path,
) -> None:
    data = new_data_dir(tmp_path)
    env = _env()
    before = _count_rows(data)
    files = [str(p) for p in TABLES]
    args = ["import", "umami", *files, "--site", "example.com", "--website", WEBSITE, "--json"]
    job = json.loads(cli(data, *args, env=env).stdout)
    assert job["status"] == "done"
    assert _count_rows(data) != before
    gone = cli(data, "import", "delete", job["id"], "--json", env=env)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["deleted"] == {"events": 0, "days": 2}  # rollups only
    assert _count_rows(data) == before

    bad = tmp_path / "website_event.csv"
    text = TABLES[0].read_text().replace("2025-03-02 09:01:30+00", "tomorrow", 1)
    bad.write_text(text)
    refused = cli(data, "import", "umami", str(bad), "--site", "example.com", "--website", WEBSITE)
    assert refused.returncode == 2
    assert refused.stderr == (
        "avocet: website_event.csv, line 10, column 'created_at': 'tomorrow' is not valid"
        " (Invalid isoformat string: 'tomorrow')\n"
    )
    other = tmp_path / "visits.csv"
    other.write_text("id,when\n1,2025-03-01\n")
    refused = cli(data, "import", "umami", str(other), "--site", "example.com")
    assert refused.returncode == 2
    assert refused.stderr.startswith("avocet: visits.csv, line 1: not a table of Umami's")
    assert _count_rows(data) == before


# --- Umami's PostgreSQL database (--from-db) ---------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as nobody then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "nobody", "--"]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL started for the test on a unix socket in a temp dir, with Umami's
    schema (its vendored migrations) and the fixture's rows; yields the URL of a role
    that may only SELECT."""
    bindir = _postgres_bin()
    if bindir is None:
        reason = "PostgreSQL is not installed (scripts/ensure-postgresql installs Debian's)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": in CI this test must run")
        pytest.skip(reason)
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="avocet-pg-"))
    root.chmod(0o755)
    home = root / "pg"
    home.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "nobody", "nogroup")
    run = _as_postgres_user()
    subprocess.run(
        [*run, str(bindir / "initdb"), "-D", str(home / "db"), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-sync", "--locale=C"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [*run, str(bindir / "postgres"), "-D", str(home / "db"), "-k", str(home),
         "-c", "listen_addresses=", "-F"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    admin = f"postgresql://postgres@/postgres?host={home}"
    try:
        for _ in range(200):
            try:
                conn = psycopg.connect(admin, autocommit=True)
                break
            except psycopg.OperationalError:
                if server.poll() is not None:
                    raise RuntimeError(
                        server.stderr.read().decode() if server.stderr else ""
                    ) from None
                time.sleep(0.05)
        with conn:
            for migration in sorted((FIXTURES / "migrations").glob("*.sql")):
                conn.execute(migration.read_text())
            conn.execute(
                "INSERT INTO website (website_id, name, domain, created_at) VALUES"
                " (%s, 'Example', 'example.com', '2024-01-01'),"
                " (%s, 'Other', 'other.example', '2024-02-01')",
                [WEBSITE, OTHER],
            )
            for table in TABLES:
                header = table.read_text().splitlines()[0]
                copy = f"COPY {table.stem} ({header}) FROM STDIN WITH (FORMAT csv, HEADER)"
                with conn.cursor().copy(copy) as into:
                    into.write(table.read_bytes())
            conn.execute("CREATE ROLE reader LOGIN")
            conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        yield f"postgresql://reader@/postgres?host={home}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_umami_database_import_reads_a_real_postgresql_read_only(
    tmp_path: Path, stats_of: Any, postgres: str
) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    import_db = ["import", "umami", "--from-db", postgres, "--site", "example.com"]
    asked = cli(data, *import_db, env=env)
    assert asked.returncode == 2
    assert asked.stderr == (
        f"avocet: --website: the database holds 2 websites: {WEBSITE} (Example, example.com);"
        f" {OTHER} (Other, other.example)\n"
    )
    done = cli(data, *import_db, "--website", WEBSITE, "--json", env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    # The other website's rows are never read; the link event is.
    expected = {**SUMMARY, "rows_read": 11}
    expected["skipped"] = {"Umami event_type 3 (links, pixels, performance: not pages)": 1}
    assert (job["status"], job["summary"]) == ("done", expected)
    assert job["files"] == ["website_event.csv", "session.csv", "event_data.csv", "revenue.csv"]
    # The same database again adds nothing.
    again = json.loads(cli(data, *import_db, "--website", WEBSITE, "--json", env=env).stdout)
    assert (again["status"], again["summary"]["duplicate_of"]) == ("duplicate", job["id"])
    # Nothing was written to Umami's database (the role may only SELECT anyway).
    import psycopg

    with psycopg.connect(postgres) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()
            for t in ("website_event", "session", "event_data", "revenue")
        ]
    assert counts == [(12,), (4,), (5,), (1,)]
    assert_hand_computed(stats_of(data))

    wrong = cli(data, "import", "umami", "--from-db", postgres + "x", "--site", "example.com")
    assert wrong.returncode == 2
    assert "avocet: --from-db: can't connect to postgresql://reader@/postgres?host=" in (
        wrong.stderr
    )


def test_umami_upload_through_the_api_with_its_website(world: Any) -> None:
    from tests.test_imports_ga4 import upload

    done = upload(world, "umami", TABLES, website=WEBSITE)
    assert done["job"]["status"] == "done", done["job"]
    assert done["job"]["summary"] == {**SUMMARY, "days_as_rollups": 2}  # past the 90 raw days
    assert done["aggregate"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 7,
        "events": 10,
        "bounce_rate": 40.0,
        "visit_duration": 222,
    }


def _rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of a fixture table with change(row dicts) applied, columns as it returns."""
    import csv

    with source.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows = change(rows)
    with target.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    return target


def v2_tables(folder: Path) -> list[Path]:
    """The fixture as Umami v2 (before prisma/migrations/09_update_hostname_region and
    08_add_utm_clid, 13_add_revenue) has it: hostname and subdivision1 on the session,
    website_event without hostname and utm_* columns, revenue as event data."""
    drop = {"hostname", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"}

    def events(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in drop} for r in rows]

    def sessions(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        out = []
        for r in rows:
            region = r.pop("region")
            r.pop("distinct_id")
            # v2 stored subdivision1 as the code after the country's ("CA" of "US-CA").
            out.append({**r, "hostname": "example.com", "subdivision1": region[3:]})
        return out

    def data(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        base = {**rows[2], "data_type": "2", "string_value": "", "date_value": ""}
        revenue = {**base, "event_data_id": "da7a0000-0000-4000-8000-000000000006",
                   "data_key": "revenue", "number_value": "49.9900"}  # fmt: skip
        currency = {**base, "event_data_id": "da7a0000-0000-4000-8000-000000000007",
                    "data_key": "currency", "number_value": "", "string_value": "USD",
                    "data_type": "1"}  # fmt: skip
        return [*rows, revenue, currency]

    return [
        _rewrite(TABLES[0], folder / "website_event.csv", events),
        _rewrite(TABLES[1], folder / "session.csv", sessions),
        _rewrite(TABLES[2], folder / "event_data.csv", data),
    ]


def test_umami_v2_tables_answer_the_same(tmp_path: Path, stats_of: Any) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    files = [str(p) for p in v2_tables(tmp_path)]
    args = ["import", "umami", *files, "--site", "example.com", "--website", WEBSITE, "--json"]
    done = cli(data, *args, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"] == SUMMARY
    stats = stats_of(data)
    assert_hand_computed(stats)
    regions = stats.get("breakdown", property="region", metrics="visitors", country="US")
    assert [(r["value"], r["visitors"]) for r in regions["results"]] == [("US-CA", 1)]


def test_umami_cloud_export_with_the_session_on_each_event_row(
    tmp_path: Path, stats_of: Any
) -> None:
    """Umami Cloud's data export: one CSV of website_event rows joined with their
    session's columns (no event data: no props, no revenue)."""
    import csv

    with TABLES[1].open(newline="") as f:
        sessions = {r["session_id"]: r for r in csv.DictReader(f)}

    def joined(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**sessions[r["session_id"]], **r} for r in rows]

    export = _rewrite(TABLES[0], tmp_path / "umami-export.csv", joined)
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    args = ["import", "umami", str(export), "--site", "example.com", "--website", WEBSITE]
    done = cli(data, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"] == SUMMARY
    stats = stats_of(data)
    assert stats.get("aggregate", metrics=AGGREGATE)["metrics"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 7,
        "events": 10,
        "bounce_rate": 40.0,
        "visit_duration": 222,
    }
    assert sorted(stats.breakdown("browser"), key=str) == [
        ("Chrome", 1, 2, 3),
        ("Firefox", 1, 1, 2),
        ("Safari", 2, 2, 2),
    ]
    assert sorted(stats.breakdown("country"), key=str) == [
        ("DE", 2, 2, 2),
        ("NL", 1, 1, 2),
        ("US", 1, 2, 3),
    ]


def test_umami_database_import_goes_through_the_running_server(world: Any, postgres: str) -> None:
    """The server holds the events file: the CLI reads Umami's database itself and uploads
    the tables to POST /api/v1/sites/{id}/imports with the website's id."""
    owner = world.user("owner@example.com", admin=True)
    site_id = world.site("example.com", owner)
    token = world.key(owner, site_id, ("sites:read", "sites:write"))
    data = Path(world.live.services.settings.data_dir)
    url = ["--url", world.live.url, "--token", token]
    done = cli(
        data, "import", "umami", "--from-db", postgres, "--website", WEBSITE, "--site", site_id,
        "--json", *url, env=_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "done"
    assert job["files"] == ["website_event.csv", "session.csv", "event_data.csv", "revenue.csv"]
    expected = {**SUMMARY, "rows_read": 11, "days_as_rollups": 2}  # the server keeps 90 days
    expected["skipped"] = {"Umami event_type 3 (links, pixels, performance: not pages)": 1}
    assert job["summary"] == expected
