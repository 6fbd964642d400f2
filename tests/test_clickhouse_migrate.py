"""`avocet migrate-storage --to clickhouse` (issue #24) on a real DuckDB data dir, into
ClickHouse's own engine (chdb): raw events, rollups (pruned days kept as pruned) and bot
counters arrive whole; 100 random questions then answer the same from both stores; a second
run copies nothing; events that ClickHouse holds for a chunk stop it, nothing overwritten."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.query import rollup
from app.query.answer import answer_sync
from app.storage.clickhouse.store import ClickHouseEventStore
from app.storage.events import EventStore
from tests.query_questions import LAST_DAY, SITES, differences, events, questions

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)
ROOT = Path(__file__).resolve().parent.parent
TODAY = LAST_DAY + timedelta(days=1)
PRUNED_BEFORE = LAST_DAY - timedelta(days=10)
EPOCH = date(1970, 1, 1)


def migrate(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "migrate-storage",
         "--to", "clickhouse", "--json", *extra],
        capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=300,
    )  # fmt: skip


def seeded(data: Path) -> dict[str, Any]:
    """A DuckDB data dir: the questions' events, every finished day rolled up, one site's
    days before PRUNED_BEFORE pruned, bot counts. Returns what it holds."""
    data.mkdir(parents=True)
    store = EventStore(data / "events.duckdb")
    rows = events()
    store.append(rows, bot_hits=[("utc.example", 20_500, 7), ("ny.example", 20_510, 3)])
    for site, zone in SITES.items():
        rollup.build_rollups(store, site, zone, rollup.days_to_build(store, site, TODAY))
    pruned = rollup.prune(store, "ktm.example", PRUNED_BEFORE)
    held = {
        "events": len(rows) - pruned,
        "pruned": pruned,
        "states": {s: store.rollup_day_states(s) for s in SITES},
    }
    store.close()
    return held


def test_migrate_copies_everything_once_and_answers_the_same(tmp_path: Path) -> None:
    data = tmp_path / "data"
    held = seeded(data)
    assert held["pruned"] > 0
    first = migrate(data)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["events"], report["copied"]) == (held["events"], held["events"])
    assert report["counters"] == 2
    again = migrate(data)  # resumable: what is there is not copied twice
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["copied"] == 0

    duck = EventStore(data / "events.duckdb")
    ch = ClickHouseEventStore(f"chdb://{data / 'clickhouse'}")
    try:
        assert ch.query("SELECT count() FROM events") == [(held["events"],)]
        for site in SITES:
            assert ch.rollup_day_states(site) == held["states"][site]
        assert any(p for _, p in held["states"]["ktm.example"].values())
        for site in ("utc.example", "ny.example"):
            assert ch.bot_hits(site, EPOCH, LAST_DAY) == duck.bot_hits(site, EPOCH, LAST_DAY) > 0
        # Nothing to rebuild on either: a pruned day is never rebuilt from nothing.
        for site in SITES:
            assert rollup.days_to_build(ch, site, TODAY) == []
        for i, q in enumerate(questions(seed=9, n=100)):
            found = differences(answer_sync(duck, q), answer_sync(ch, q))
            assert not found, (i, q, found)
    finally:
        ch.close()
        duck.close()


def test_events_already_in_clickhouse_for_a_chunk_stop_the_copy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seeded(data)
    ch = ClickHouseEventStore(f"chdb://{data / 'clickhouse'}")
    try:
        ch.append([events()[0]])  # as if a server had ingested there meanwhile
    finally:
        ch.close()
    refused = migrate(data)
    assert refused.returncode != 0
    assert "ClickHouse holds 1 events of site" in refused.stderr, refused.stderr
    assert "nothing was overwritten" in refused.stderr
    assert "Traceback" not in refused.stderr
