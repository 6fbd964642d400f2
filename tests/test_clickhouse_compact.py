"""`avocet compact` on ClickHouse (issue #24): each finished month's parts of every table
merged into one (OPTIMIZE ... FINAL), the month still being written left to ClickHouse's
own merges; the rows are the same after, and a deletion's masked rows are gone from the
parts. Through the command line, on chdb, as a user runs it with the server stopped."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.storage.clickhouse.store import ClickHouseEventStore
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)
EPOCH = date(1970, 1, 1)


def _row(site: str, ts: datetime, visitor: int) -> tuple[object, ...]:
    micros = int(ts.timestamp() * 1e6)
    day = (ts.date() - EPOCH).days
    row = [site, micros, day, "pageview", visitor, visitor, "example.com", "/", "/"]
    return (*row, *([None] * 17), None, None, None, True, None, None, None)


def _parts(store: ClickHouseEventStore) -> dict[str, int]:
    rows = store.query(
        "SELECT partition_id, count() FROM system.parts WHERE active"
        " AND database = currentDatabase() AND table = 'events' GROUP BY 1 ORDER BY 1"
    )
    return {str(p): int(n) for p, n in rows}


def test_compact_merges_each_finished_month_into_one_part(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'ch'}"
    store = ClickHouseEventStore(dsn)
    now = datetime.now(UTC)
    this_month = now.strftime("%Y%m")
    try:
        for i in range(3):  # three inserts a month: three parts each
            store.append([_row("a.example", datetime(2025, 1, 10 + i, tzinfo=UTC), i)])
            store.append([_row("a.example", datetime(2025, 2, 10 + i, tzinfo=UTC), i)])
            store.append([_row("a.example", now, 100 + i)])
        store.delete_user_events("a.example", 42)  # no rows: nothing masked
        store.execute("DELETE FROM events WHERE visitor_id = 2 AND toYYYYMM(ts) = 202501")
        assert _parts(store) == {"202501": 3, "202502": 3, this_month: 3}
    finally:
        store.close()

    env = {**os.environ, "AVOCET_STORAGE": "clickhouse", "AVOCET_CLICKHOUSE__DSN": dsn}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data"), "compact",
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["done"] == {"events 202501": 3, "events 202502": 3}
    assert report["failed"] == {} and report["rewritten"] > 0

    store = ClickHouseEventStore(dsn)
    try:
        assert _parts(store) == {"202501": 1, "202502": 1, this_month: 3}
        kept = store.query("SELECT toYYYYMM(ts), count() FROM events GROUP BY 1 ORDER BY 1")
        assert kept == [(202501, 2), (202502, 3), (int(this_month), 3)]
    finally:
        store.close()
