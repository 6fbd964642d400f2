"""Compact rollup storage (migration 003): a data dir written by a binary with 002's
daily_stats table upgrades on start to the same rows, pruned days included; rows written
now read back as written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from app.storage.events import EventStore
from app.storage.migrate import migrations
from app.storage.rollups import ROLLUP_COLUMNS

# (site_id, day, property, value, visitors, visits, pageviews, events, custom_events,
#  bounces, duration, session_pageviews, revenue, engaged_ms, engaged_visitors,
#  scroll_sum, scroll_count): odd cases on purpose (pageviews < visitors, negative and
#  fractional revenue, custom-event-only values, NULL values).
ROWS: list[tuple[Any, ...]] = [
    ("s1", date(2025, 1, 1), "", None, 10, 12, 30, 33, 3, 4, 123.456789, 30,
     Decimal("19.990000"), 5000, 3, 150, 4),
    ("s1", date(2025, 1, 1), "page", "/a", 5, 6, 2, 9, 7, 1, 0.5, 11,
     Decimal("-3.250000"), 0, 0, 0, 0),
    ("s1", date(2025, 1, 1), "page", "/b", 3, 3, 0, 2, 2, 0, 0.0, 4,
     Decimal("0.000001"), 10, 1, 80, 1),
    ("s1", date(2025, 1, 2), "source", None, 7, 9, 20, 20, 0, 2, 61.0, 20,
     Decimal("123456789012.123456"), 0, 0, 0, 0),
    ("s2", date(2024, 12, 31), "utm_term", "x", 1, 1, 1, 1, 0, 1, 0.0, 1,
     Decimal("0.000000"), 0, 0, 0, 0),
]  # fmt: skip


def _old_data_dir(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for m in migrations("events")[:2]:
        con.execute(m.sql)
        con.execute("INSERT INTO schema_version VALUES (?)", [m.version])
    con.executemany(f"INSERT INTO daily_stats VALUES ({', '.join('?' * 17)})", ROWS)
    con.executemany(
        "INSERT INTO rollup_days VALUES (?, ?, ?, TIMESTAMP '2025-01-03 00:00:00', ?)",
        [("s1", date(2025, 1, 1), 40, True), ("s1", date(2025, 1, 2), 20, False)],
    )
    con.close()


def _read(store: EventStore) -> list[tuple[Any, ...]]:
    return store.query(
        f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_stats"
        " ORDER BY site_id, day, property, value NULLS FIRST"
    )


def test_old_rollups_convert_exactly_and_pruned_days_stay(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    _old_data_dir(path)
    store = EventStore(path)
    try:
        # Migration 008's event_duration starts as the duration (pruned days keep it).
        converted = [(*r, r[10]) for r in ROWS]
        assert _read(store) == sorted(converted, key=lambda r: (r[0], r[1], r[2], r[3] or ""))
        types = dict(
            store.query(
                "SELECT column_name, data_type FROM duckdb_columns()"
                " WHERE table_name = 'daily_stats'"
            )
        )
        assert types["revenue"] == "DECIMAL(38,6)" and types["duration"] == "DOUBLE"
        assert store.query("SELECT day, events, pruned FROM rollup_days ORDER BY day") == [
            (date(2025, 1, 1), 40, True),
            (date(2025, 1, 2), -1, False),  # raw events still there: 008 marks it rebuilt
        ]
    finally:
        store.close()


def test_written_rollups_read_back_as_written(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.duckdb")
    try:
        # event_duration (migration 008): its own value, apart from duration.
        s1 = [(*r, r[10] / 4) for r in ROWS if r[0] == "s1"]
        # The builder hands revenue as float (the raw path's value); stored exactly.
        rows = [(*r[:12], float(r[12]), *r[13:]) for r in s1]
        store.replace_rollups("s1", [date(2025, 1, 1), date(2025, 1, 2)], rows, [])
        assert _read(store) == s1
        # A replaced day loses its old rows; the other day keeps its own.
        store.replace_rollups("s1", [date(2025, 1, 1)], rows[:1], [])
        assert _read(store) == [s1[0], s1[3]]
    finally:
        store.close()


def test_unrolled_span_finds_the_days_without_rollups_in_any_range() -> None:
    from datetime import timedelta

    from app.query.rollup_answer import _unrolled_span

    d = date(2026, 3, 1)
    rolled = {d + timedelta(days=i) for i in range(10)}  # Mar 1..10
    assert _unrolled_span(d, d + timedelta(days=9), rolled) is None
    span = _unrolled_span(d, d + timedelta(days=11), rolled)
    assert span == (date(2026, 3, 11), date(2026, 3, 12))
    assert _unrolled_span(date(2026, 2, 27), date(2026, 3, 5), rolled) == (
        date(2026, 2, 27),
        date(2026, 2, 28),
    )
    # A hole in the middle; and a range of thousands of years costs nothing more.
    holed = rolled - {date(2026, 3, 4)}
    assert _unrolled_span(d, date(2026, 3, 10), holed) == (date(2026, 3, 4), date(2026, 3, 4))
    assert _unrolled_span(date(1900, 1, 1), date(9000, 12, 31), rolled) == (
        date(1900, 1, 1),
        date(9000, 12, 31),
    )


def test_rolled_days_cache_follows_every_rollup_change(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.duckdb")
    try:
        one, two = date(2025, 1, 1), date(2025, 1, 2)
        assert store.rolled_days("s1") == frozenset()
        store.replace_rollups("s1", [one], [], [(one, 5)])
        assert store.rolled_days("s1") == {one}
        store.replace_rollups("s1", [two], [], [(two, 7)])
        assert store.rolled_days("s1") == {one, two}
        store.replace_rollups("s1", [one], [], [])  # a day's rollup removed
        assert store.rolled_days("s1") == {two}
        assert store.rolled_days("s2") == frozenset()  # per site
        # What the cache says is what the table says.
        rows = store.query("SELECT day FROM rollup_days WHERE site_id = 's1'")
        assert {r[0] for r in rows} == store.rolled_days("s1")
    finally:
        store.close()
