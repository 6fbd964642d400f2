"""The ClickHouse store (issue #24, preview) on ClickHouse's own engine (chdb) in a temp dir:
its schema, rows read back as DuckDB stores them, exactly-once batches, summed counters,
deletes and rollup builds; and that Avocet without storage = "clickhouse" never loads it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, RetentionSettings, Settings, load_settings
from app.storage.clickhouse.store import PROMPT_CLEANUP, ClickHouseEventStore
from app.storage.events import COLUMNS, EventStore
from tests.conftest import free_port, start_live_server, stop_live_server

ROOT = Path(__file__).resolve().parent.parent
# chdb is loaded by the first store opened, not at collection: its ~280 MB library then
# stays out of the pytest workers that never run this file.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)

EPOCH = date(1970, 1, 1)


def day_no(day: date) -> int:
    return (day - EPOCH).days


def event(site: str, ts: datetime, **values: Any) -> tuple[Any, ...]:
    """An EVENT_SCHEMA row: a pageview of one visitor unless told otherwise."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        site_id=site,
        ts=ts,
        day=ts.date(),
        name="pageview",
        visitor_id=1,
        session_id=1,
        hostname="example.com",
        pathname="/",
        entry_page="/",
        interactive=True,
    )
    row.update(values)
    return tuple(row[c] for c in COLUMNS)


def varied_batch(site: str) -> list[tuple[Any, ...]]:
    """Rows that use every column kind: NULLs, props, revenue, negative ids, microseconds."""
    t = datetime(2026, 11, 30, 23, 59, 59, 999_999)
    return [
        event(site, t, visitor_id=-(2**63), session_id=-42, referrer=None, source=None),
        event(
            site,
            t + timedelta(microseconds=1),
            day=date(2026, 12, 1),
            name="Signup",
            visitor_id=2**63 - 1,
            session_id=7,
            pathname="/é/ünïcode?q='x'",
            referrer="news.ycombinator.com",
            source="Hacker News",
            channel="Organic Social",
            utm_source="hn",
            utm_medium="social",
            utm_campaign="launch",
            utm_content="a",
            utm_term="b",
            device="Desktop",
            browser="Chrome",
            browser_version="130.0",
            os="Mac",
            os_version="10.15",
            screen="Desktop",
            country="DE",
            region="DE-BE",
            city="2950159",
            props=[("plan", "pro"), ("path", "/checkout")],
            revenue=Decimal("1234.567891"),
            currency="EUR",
            interactive=True,
            engagement_ms=None,
            scroll_depth=None,
            user_key=99,
        ),
        event(
            site,
            datetime(2026, 12, 1, 8, 0, 0),
            name="engagement",
            visitor_id=3,
            session_id=8,
            interactive=False,
            engagement_ms=12_345,
            scroll_depth=87,
            props=None,
            hostname=None,
            pathname=None,
            entry_page=None,
        ),
    ]


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseEventStore]:
    # One engine for the module: chdb starts in ~3 s, and a process holds one at a time.
    store = ClickHouseEventStore(f"chdb://{tmp_path_factory.mktemp('ch') / 'clickhouse'}")
    yield store
    store.close()


def count(ch: ClickHouseEventStore, sql: str, *params: object) -> int:
    return int(ch.query(sql, list(params))[0][0])


def test_a_plain_install_imports_no_clickhouse_module() -> None:
    code = (
        "import sys, app.main, app.cli, app.services, app.storage.store\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('chdb', 'clickhouse_connect', 'app') and ('clickhouse' in m or 'chdb' in m))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_storage_and_dsn_settings_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(None, {"AVOCET_DATA_DIR": str(tmp_path)})
    assert settings.storage == "duckdb"
    assert settings.clickhouse_dsn == f"chdb://{tmp_path / 'clickhouse'}"
    env = {"AVOCET_STORAGE": "clickhouse", "AVOCET_CLICKHOUSE__DSN": "https://ch:8443/avocet"}
    settings = load_settings(None, env)
    assert (settings.storage, settings.clickhouse_dsn) == ("clickhouse", "https://ch:8443/avocet")
    with pytest.raises(ConfigError, match="storage"):
        load_settings(None, {"AVOCET_STORAGE": "postgres"})
    with pytest.raises(ConfigError, match=r"expected chdb://PATH or http\(s\)"):
        load_settings(None, {"AVOCET_CLICKHOUSE__DSN": "tcp://ch:9000"})


def test_retention_by_ttl_drops_only_days_past_the_instance_limit(tmp_path: Path) -> None:
    """[retention] max_total_days = 30: ClickHouse's merges drop every table's days past
    30 + TTL_MARGIN_DAYS (a backstop behind the prune job), and keep the rest; the TTL is
    set when the server opens the store, left alone when unchanged, removed at 0. (Before
    the tests of the module's `ch`: chdb holds one folder per process at a time.)"""
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        port=free_port(),
        run_jobs=False,
        storage="clickhouse",
        retention=RetentionSettings(max_total_days=30),
    )
    live = start_live_server(settings)
    try:
        store = live.services.events
        assert isinstance(store, ClickHouseEventStore)
        tables = ("events", "daily_rollups", "rollup_days", "bot_counts", "excluded_counts")
        for table in tables:
            engine = store.query(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase()"
                " AND name = {p0:String}",
                [table],
            )[0][0]
            assert "TTL day + toIntervalDay(32)" in engine, (table, engine)
        today = datetime.now(UTC).date()
        old, kept = today - timedelta(days=40), today - timedelta(days=31)
        site = "ttl.example"
        rows = [event(site, datetime(d.year, d.month, d.day, 12)) for d in (old, kept)]
        store.append(rows, [(site, day_no(old), 3), (site, day_no(kept), 4)])
        store.replace_rollups(
            site, [old, kept], [rollup(site, old, "", None, 1), rollup(site, kept, "", None, 2)],
            [(old, 1), (kept, 1)],
        )  # fmt: skip
        for table in tables:
            store.execute(f"OPTIMIZE TABLE {table} FINAL")
        for table in ("events", "daily_rollups", "rollup_days", "bot_counts"):
            days = store.query(
                f"SELECT DISTINCT day FROM {table} WHERE site_id = {{p0:String}}", [site]
            )
            assert days == [(kept,)], table
        # Unchanged: no new ALTER, so no new mutation (finished ones may go meanwhile:
        # the tables keep one, and cleanup runs every second).
        listed = "SELECT table, mutation_id FROM system.mutations"
        mutations = set(store.query(listed))
        store.keep_at_most(30)
        assert set(store.query(listed)) <= mutations
        store.keep_at_most(0)
        engine = store.query("SELECT engine_full FROM system.tables WHERE name = 'events'")[0][0]
        assert "TTL" not in engine
    finally:
        stop_live_server(live)


def test_schema_is_plausibles_layout(ch: ClickHouseEventStore) -> None:
    tables = {
        r[0]: r[1:]
        for r in ch.query(
            "SELECT name, engine, partition_key, sorting_key, sampling_key FROM system.tables"
            " WHERE database = currentDatabase() ORDER BY name"
        )
    }
    assert tables["events"] == (
        "MergeTree",
        "toYYYYMM(ts)",
        "site_id, day, name, visitor, ts",
        "visitor",
    )
    assert tables["bot_counts"][0] == "SummingMergeTree"
    assert tables["excluded_counts"][0] == "SummingMergeTree"
    assert tables["daily_rollups"][:3] == (
        "ReplacingMergeTree",
        "toYYYYMM(day)",
        "site_id, property, day, value",
    )
    assert tables["rollup_days"][0] == "ReplacingMergeTree"
    assert tables["daily_stats"][0] == "View"
    types = dict(ch.query("SELECT name, type FROM system.columns WHERE table = 'events'"))
    assert types["ts"] == "DateTime64(6, 'UTC')"
    assert types["visitor"] == "UInt64"
    assert types["browser"] == "LowCardinality(Nullable(String))"
    codecs = dict(
        ch.query("SELECT name, compression_codec FROM system.columns WHERE table = 'events'")
    )
    assert codecs["ts"] == "CODEC(Delta(8), ZSTD(1))"
    # SELECT * is EVENT_SCHEMA exactly (the materialized visitor hash stays out of it).
    assert tuple(ch.arrow("SELECT * FROM events LIMIT 0").column_names) == COLUMNS


def test_rows_read_back_as_duckdb_stores_them(ch: ClickHouseEventStore, tmp_path: Path) -> None:
    batch = varied_batch("same.example")
    duck = EventStore(tmp_path / "events.duckdb")
    try:
        duck.append(batch)
        expected = duck.query_dicts(
            "SELECT * FROM events WHERE site_id = ? ORDER BY ts, session_id, name",
            ["same.example"],
        )
    finally:
        duck.close()
    ch.append(batch, batch_id="parity-1")
    got = ch.events("same.example")
    assert len(got) == len(expected) == 3
    for mine, theirs in zip(got, expected, strict=True):
        for column in COLUMNS:
            assert (column, mine[column]) == (column, theirs[column])
    # The values themselves, independently of DuckDB.
    assert got[0]["ts"] == datetime(2026, 11, 30, 23, 59, 59, 999_999)
    assert got[0]["visitor_id"] == -(2**63)
    assert got[1]["revenue"] == Decimal("1234.567891")
    assert got[1]["props"] == {"plan": "pro", "path": "/checkout"}
    assert got[2]["props"] is None and got[2]["hostname"] is None


def test_a_retried_batch_inserts_nothing_twice(ch: ClickHouseEventStore) -> None:
    site = "retry.example"
    day = date(2026, 12, 1)
    rows = [event(site, datetime(2026, 12, 1, 10, i), visitor_id=i, session_id=i) for i in range(5)]
    bots = [(site, day_no(day), 2)]
    excluded = [(site, day_no(day), "ip", 3)]
    for _ in range(3):  # the writer retries the same batch after an error it can't tell
        ch.append(rows, bots, excluded, batch_id="batch-0001")
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", site) == 5
    assert ch.bot_hits(site, day, day) == 2
    assert count(ch, "SELECT sum(hits) FROM excluded_counts WHERE site_id = {p0:String}", site) == 3
    # The same content under another batch id is another batch: it goes in.
    ch.append(rows, bots, excluded, batch_id="batch-0002")
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", site) == 10
    assert ch.bot_hits(site, day, day) == 4
    # Without an id each call is its own batch (identical bot counts are not merged away).
    ch.append([], bots)
    ch.append([], bots)
    assert ch.bot_hits(site, day, day) == 8


def test_counters_sum_across_batches_and_merges(ch: ClickHouseEventStore) -> None:
    site = "bots.example"
    d1, d2 = date(2026, 11, 29), date(2026, 11, 30)
    for n, hits in enumerate((2, 3, 5)):
        ch.append(
            [],
            [(site, day_no(d1), hits), (site, day_no(d2), 1)],
            [(site, day_no(d1), "ip", hits), (site, day_no(d1), "page", 1)],
            batch_id=f"bots-{n}",
        )
    assert ch.bot_hits(site, d1, d1) == 10
    assert ch.bot_hits(site, d1, d2) == 13
    assert ch.bot_hits(site, d2 + timedelta(days=1), d2 + timedelta(days=9)) == 0
    ch.execute("OPTIMIZE TABLE bot_counts FINAL")
    ch.execute("OPTIMIZE TABLE excluded_counts FINAL")
    assert ch.query(
        "SELECT day, hits FROM bot_counts WHERE site_id = {p0:String} ORDER BY day", [site]
    ) == [(d1, 10), (d2, 3)]
    assert ch.query(
        "SELECT reason, hits FROM excluded_counts WHERE site_id = {p0:String} ORDER BY reason",
        [site],
    ) == [("ip", 10), ("page", 3)]


def test_delete_a_users_events_and_a_sites_data(ch: ClickHouseEventStore) -> None:
    site, other = "gone.example", "kept.example"
    rows = [
        event(site, datetime(2026, 11, 28, 9), user_key=7),
        event(site, datetime(2026, 11, 28, 10), user_key=7),
        event(site, datetime(2026, 11, 29, 9), user_key=8),
        event(site, datetime(2026, 11, 30, 9)),
        event(site, datetime(2026, 11, 30, 12)),
        event(other, datetime(2026, 11, 29, 9), user_key=7),
    ]
    ch.append(
        rows,
        [(site, day_no(date(2026, 11, 29)), 4), (other, day_no(date(2026, 11, 29)), 1)],
        batch_id="del-1",
    )
    assert ch.delete_user_events(site, 7) == 2
    assert ch.delete_user_events(site, 7) == 0
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", site) == 3
    # A reset asked for at 11:00 on the 30th: the 12:00 hit of that day stays.
    gone = ch.delete_site_data(
        site, date(2026, 11, 29), date(2026, 11, 30), before=datetime(2026, 11, 30, 11)
    )
    assert gone == {
        "events": 2,
        "daily_rollups": 0,
        "rollup_days": 0,
        "bot_counts": 1,
        "excluded_counts": 0,
    }
    assert ch.query("SELECT ts FROM events WHERE site_id = {p0:String}", [site]) == [
        (datetime(2026, 11, 30, 12),)
    ]
    assert ch.delete_site_data(site)["events"] == 1
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", site) == 0
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", other) == 1
    assert ch.bot_hits(other, date(2026, 11, 29), date(2026, 11, 29)) == 1


def grep_folder(folder: Path, needle: bytes) -> list[str]:
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    )


def test_a_deletion_leaves_no_file_holding_the_rows(ch: ClickHouseEventStore) -> None:
    """A lightweight DELETE only masks rows, and APPLY DELETED MASK writes new parts beside
    the old ones, which ClickHouse removes later: rewrite() (what a deletion ends with)
    returns only once they are gone, so right after it no file holds a deleted value.
    The secret is a hostname: LowCardinality with LZ4, whose literals grep can find."""
    folder = Path(ch.dsn.removeprefix("chdb://"))
    site, secret = "grep.example", uuid.uuid4().hex
    # No merge of these parts into the module's others before the grep below (a merged
    # part may be compressed otherwise); the deletion's own rewrite is what is tested.
    ch.execute("SYSTEM STOP MERGES events")
    try:
        for i in range(3):  # three parts, two of them with the user's rows
            rows = [event(site, datetime(2026, 11, 20, 9, i), visitor_id=100 + i)]
            if i < 2:
                rows.append(
                    event(site, datetime(2026, 11, 20, 10, i), user_key=42, hostname=secret)
                )
            ch.append(rows, batch_id=f"grep-{i}")
        assert grep_folder(folder, secret.encode())  # the test can fail: it is on disk
    finally:
        ch.execute("SYSTEM START MERGES events")
    assert ch.delete_user_events(site, 42) == 2
    ch.rewrite()
    assert grep_folder(folder, secret.encode()) == []
    assert count(ch, "SELECT count() FROM events WHERE site_id = {p0:String}", site) == 3
    assert count(ch, "SELECT count() FROM system.parts WHERE NOT active") == 0
    # Nor the DELETE's own record (its WHERE: the user): only the APPLY's is kept.
    commands = ch.query("SELECT command FROM system.mutations WHERE table = 'events'")
    assert commands == [("(APPLY DELETED MASK)",)]


def test_every_table_cleans_up_promptly_also_in_a_store_made_before(
    ch: ClickHouseEventStore,
) -> None:
    """PROMPT_CLEANUP is on every MergeTree table; a table without it (a store made by an
    older Avocet) gets it when the store opens."""
    engines = dict(
        ch.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
            " AND engine LIKE '%MergeTree'"
        )
    )
    assert len(engines) >= 11
    for name, engine in engines.items():
        for setting, value in PROMPT_CLEANUP.items():
            assert f"{setting} = {value}" in engine, (name, engine)
    ch.execute(f"ALTER TABLE bot_counts RESET SETTING {', '.join(PROMPT_CLEANUP)}")
    reset = ch.query("SELECT engine_full FROM system.tables WHERE name = 'bot_counts'")[0][0]
    assert "cleanup_delay_period" not in reset
    ch._prompt_cleanup()  # what opening the store runs
    again = ch.query("SELECT engine_full FROM system.tables WHERE name = 'bot_counts'")[0][0]
    assert all(f"{setting} = {value}" in again for setting, value in PROMPT_CLEANUP.items())


REPLICATED_SCHEMA = """
import os, re, uuid
from chdb import session
from app.storage.clickhouse.store import schema_statements
s = session.Session("{folder}?config-file={config}")
for statement in schema_statements(replicated=True):
    # A Replicated database gives each table its UUID itself (the Keeper path's {{uuid}})
    statement = re.sub(
        r"^CREATE TABLE IF NOT EXISTS (\\w+)",
        lambda m: f"CREATE TABLE IF NOT EXISTS {{m.group(1)}} UUID '{{uuid.uuid4()}}'",
        statement,
    )
    s.query(statement)
for row in s.query(
    "SELECT t.name, t.engine, r.zookeeper_path, r.replica_name, t.engine_full"
    " FROM system.tables t LEFT JOIN system.replicas r ON r.table = t.name"
    " AND r.database = t.database WHERE t.database = currentDatabase() ORDER BY t.name",
    "JSONCompactEachRow",
).bytes().decode().splitlines():
    print(row, flush=True)
os._exit(0)  # no shutdown: read-only replicated tables without a Keeper abort chdb's
"""


REPLICATED_DOCTOR = """
import json, os
from app.storage.clickhouse.store import ClickHouseEventStore
store = ClickHouseEventStore("chdb://{folder}?config-file={config}")
print(json.dumps(store.health()), flush=True)
os._exit(0)
"""


def test_on_a_replicated_database_every_table_is_replicated(tmp_path: Path) -> None:
    """ClickHouse 26.9 takes schema_statements(replicated=True) whole: every table is its
    Replicated* twin with the default Keeper path (one per table UUID and shard) and the
    server's replica name, the same engine arguments, and the views as they are. chdb
    has no Keeper, so the tables are made but stay read-only: inserts, quorum and
    replication are not exercised (README "ClickHouse")."""
    config = tmp_path / "config.xml"
    config.write_text(
        "<clickhouse><zookeeper><implementation>testkeeper</implementation></zookeeper>"
        "<macros><shard>01</shard><replica>replica-a</replica></macros></clickhouse>"
    )
    script = REPLICATED_SCHEMA.format(folder=tmp_path / "ch", config=config)
    # chdb's own session, which takes a config file (also when the suite runs through
    # clickhouse-connect: tests/test_clickhouse_driver.py)
    env = {k: v for k, v in os.environ.items() if k != "TEST_AVOCET_CLICKHOUSE_DRIVER"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    tables = {row[0]: row[1:] for row in map(json.loads, done.stdout.splitlines())}
    plain = {
        "events": "MergeTree", "bot_counts": "SummingMergeTree",
        "excluded_counts": "SummingMergeTree", "daily_rollups": "ReplacingMergeTree",
        "rollup_days": "ReplacingMergeTree", "redates": "MergeTree", "imports": "MergeTree",
        "import_days": "MergeTree", "import_rollups": "MergeTree",
        "imported_stats": "MergeTree", "import_steps": "ReplacingMergeTree",
    }  # fmt: skip
    assert {name: engine for name, (engine, *_) in tables.items()} == {
        **{name: f"Replicated{engine}" for name, engine in plain.items()},
        "daily_rollups_current": "View",
        "daily_stats": "View",
    }
    for name in plain:
        _, path, replica, full = tables[name]
        assert re.fullmatch(r"/clickhouse/tables/[0-9a-f-]{36}/01", path), (name, path)
        assert replica == "replica-a"
        assert "replicated_deduplication_window = 10000" in full
    assert "'{replica}', version, deleted)" in tables["import_steps"][3]
    assert "'{replica}', build)" in tables["daily_rollups"][3]
    assert "'{replica}', hits)" in tables["bot_counts"][3]
    # Opened as a store, `avocet doctor`'s report says what is wrong: without a Keeper
    # session every table is read-only here, and inserts would fail.
    doctor = subprocess.run(
        [sys.executable, "-c", REPLICATED_DOCTOR.format(folder=tmp_path / "ch", config=config)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert doctor.returncode == 0, doctor.stderr[-3000:]
    health = json.loads(doctor.stdout)
    assert health["replicas"] == {"tables": 11, "active": 0, "total": 0, "delay_s": 0}
    assert health["problems"] == [
        f"table {name}: read-only on this replica (no Keeper session): inserts fail"
        for name in sorted(plain)
    ]


TABLES = (
    "bot_counts", "daily_rollups", "events", "excluded_counts", "import_days",
    "import_rollups", "import_steps", "imported_stats", "imports", "redates", "rollup_days",
)  # fmt: skip


def test_a_database_that_is_not_replicated_gets_plain_tables(ch: ClickHouseEventStore) -> None:
    assert ch.replicated is False and ch.mutations_sync == 1
    assert ch.quorum_clause() == ""
    # What a replicated store adds to an INSERT ... SELECT (re-dating's stage) is settings
    # ClickHouse knows (a plain table ignores the quorum).
    ch.replicated = True
    try:
        clause = ch.quorum_clause()
    finally:
        ch.replicated = False
    assert clause == (
        " SETTINGS insert_quorum = 'auto', insert_quorum_parallel = 1,"
        " insert_quorum_timeout = 60000"
    )
    ch.execute("CREATE TABLE quorum_check (n UInt8) ENGINE = MergeTree ORDER BY n")
    ch.execute(f"INSERT INTO quorum_check SELECT 7{clause}")
    assert ch.query("SELECT n FROM quorum_check") == [(7,)]
    ch.execute("DROP TABLE quorum_check SYNC")
    # Plain tables on a Replicated database (an older Avocet made them there) would keep
    # their rows on one replica: the doctor says so, table by table.
    assert ch.health()["problems"] == []
    ch.replicated = True
    try:
        problems = ch.health()["problems"]
    finally:
        ch.replicated = False
    assert problems == [
        f"table {name}: not replicated on a Replicated database: its rows are on this"
        " replica only (copy them into a replicated table)"
        for name in sorted(TABLES)
    ]
    engines = ch.query(
        "SELECT DISTINCT engine FROM system.tables WHERE database = currentDatabase()"
        " ORDER BY engine"
    )
    assert engines == [("MergeTree",), ("ReplacingMergeTree",), ("SummingMergeTree",), ("View",)]


def rollup(site: str, day: date, prop: str, value: str | None, visitors: int) -> tuple[Any, ...]:
    """A logical rollup row (ROLLUP_COLUMNS): visits = visitors + 1, pageviews = 2 x."""
    return (
        site, day, prop, value,
        visitors, visitors + 1, 2 * visitors, 2 * visitors + 1, 1, 1, 30.5,
        2 * visitors + 2, Decimal("10.000001") * visitors, 1000, 1, 50, 1, 20.25,
    )  # fmt: skip


def test_rollup_builds_replace_each_other(ch: ClickHouseEventStore) -> None:
    site = "rolled.example"
    d1, d2 = date(2026, 11, 20), date(2026, 11, 21)
    first = [
        rollup(site, d1, "", None, 3),
        rollup(site, d1, "source", "Google", 2),
        rollup(site, d1, "source", "Bing", 1),
        rollup(site, d2, "", None, 5),
    ]
    ch.replace_rollups(site, [d1, d2], first, [(d1, 7), (d2, 9)])
    assert ch.rolled_days(site) == {d1, d2}
    logical = ch.query(
        "SELECT * FROM daily_stats WHERE site_id = {p0:String} ORDER BY day, property, value",
        [site],
    )
    assert [tuple(r) for r in logical] == sorted(first, key=lambda r: (r[1], r[2], r[3] or ""))
    totals = ch.rollup_totals(site).sums(d1, d2)
    # visitors, visits, pageviews, events, custom_events, bounces, duration, ...
    assert totals[:7] == (8, 10, 16, 18, 2, 2, 61.0)
    assert totals[8] == Decimal("80.000008")
    # Day 1 rebuilt without Bing (its late events moved it): Bing's row is gone.
    second = [rollup(site, d1, "", None, 4), rollup(site, d1, "source", "Google", 4)]
    ch.replace_rollups(site, [d1], second, [(d1, 8)])
    assert ch.query(
        "SELECT value, visitors FROM daily_stats WHERE site_id = {p0:String}"
        " AND day = {p1:Date} AND property = 'source'",
        [site, d1],
    ) == [("Google", 4)]
    assert ch.rollup_totals(site).sums(d1, d2)[0] == 9
    assert count(ch, "SELECT count() FROM daily_rollups WHERE site_id = {p0:String}", site) == 3
    assert ch.query(
        "SELECT day, events FROM rollup_days FINAL WHERE site_id = {p0:String} ORDER BY day",
        [site],
    ) == [(d1, 8), (d2, 9)]
    # A day rebuilt to nothing is no longer rolled up.
    ch.replace_rollups(site, [d2], [], [])
    assert ch.rolled_days(site) == {d1}
    assert ch.rollup_totals(site).sums(d2, d2)[0] == 0


RETRY_AFTER_KILL = """
import os, sys
from datetime import datetime
sys.path.insert(0, {tests!r})
from test_clickhouse_store import event
from app.storage.clickhouse.store import ClickHouseEventStore

store = ClickHouseEventStore({dsn!r})
rows = [event("killed.example", datetime(2026, 12, 1, 10, i), visitor_id=i) for i in range(50)]
store.append(rows, [("killed.example", 20423, 1)], batch_id="batch-after-kill")
print(store.query("SELECT count() FROM events")[0][0], flush=True)
os._exit(0)  # no close(): as a kill -9 after the insert returned
"""


def test_a_batch_retried_after_the_process_died_inserts_nothing_twice(tmp_path: Path) -> None:
    """The writer acknowledged nothing yet when it died right after the insert returned: on
    restart it retries the batch under its id, and the table still has it once."""
    script = RETRY_AFTER_KILL.format(
        tests=str(ROOT / "tests"), dsn=f"chdb://{tmp_path / 'clickhouse'}"
    )
    counts = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert counts == ["50", "50"]


def test_rollups_read_back_as_duckdb_stores_them(ch: ClickHouseEventStore, tmp_path: Path) -> None:
    site = "rolled-parity.example"
    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    rows = [
        rollup(site, d1, "", None, 3),
        rollup(site, d1, "country", "DE", 2),
        rollup(site, d1, "props:plan", "pro", 1),
        rollup(site, d2, "", None, 11),
    ]
    order = " ORDER BY day, property, value NULLS FIRST"
    duck = EventStore(tmp_path / "events.duckdb")
    try:
        duck.replace_rollups(site, [d1, d2], rows, [(d1, 6), (d2, 11)])
        expected = duck.query("SELECT * FROM daily_stats WHERE site_id = ?" + order, [site])
        expected_days = duck.rolled_days(site)
        expected_sums = duck.rollup_totals(site).sums(d1, d2)
    finally:
        duck.close()
    ch.replace_rollups(site, [d1, d2], rows, [(d1, 6), (d2, 11)])
    got = ch.query("SELECT * FROM daily_stats WHERE site_id = {p0:String}" + order, [site])
    assert got == expected
    assert ch.rolled_days(site) == expected_days == {d1, d2}
    assert ch.rollup_totals(site).sums(d1, d2) == expected_sums
    assert expected_sums[0] == 14 and expected_sums[8] == Decimal("140.000014")


WRITE_A_PART = """
import sys
sys.path.insert(0, {tests!r})
from datetime import datetime
from test_clickhouse_store import event
from app.storage.clickhouse.store import ClickHouseEventStore

store = ClickHouseEventStore({dsn!r})
store.append([event("broken.example", datetime(2026, 12, 1, 10, i)) for i in range(5)])
print(store.query("SELECT path FROM system.parts WHERE table = 'events' AND active")[0][0])
store.close()
"""
HEALTH = """
import json
from app.storage.clickhouse.store import ClickHouseEventStore

store = ClickHouseEventStore({dsn!r})
print(json.dumps(store.health()["problems"]))
store.close()
"""


def test_the_doctor_reports_a_part_clickhouse_found_broken(tmp_path: Path) -> None:
    """A part damaged on disk (its checksums overwritten) while the store was closed: on the
    next open ClickHouse sets it aside, and health() says so (the doctor exits 1)."""
    dsn = f"chdb://{tmp_path / 'clickhouse'}"

    def run(script: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script.format(tests=str(ROOT / "tests"), dsn=dsn)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    part = Path(run(WRITE_A_PART))
    assert json.loads(run(HEALTH)) == []
    (part / "checksums.txt").write_bytes(b"not a checksum file")
    assert json.loads(run(HEALTH)) == [
        f"table events: part broken-on-start_{part.name} set aside by ClickHouse (broken-on-start)"
    ]
