"""Bot hits per site-day: answered from memory after the first read, and the memory follows
every commit (the server is the only writer), so it always equals the table."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from app.storage.events import EventStore

EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - EPOCH).days


def _table(store: EventStore, site: str, first: date, last: date) -> int:
    rows = store.query(
        "SELECT coalesce(sum(hits), 0) FROM bot_counts WHERE site_id = ? AND day BETWEEN ? AND ?",
        [site, first, last],
    )
    return int(rows[0][0])


def test_bot_hits_follow_commits_when_already_read(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    store = EventStore(path)
    d1, d2, d3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
    store.append([], [("a", _day(d1), 2), ("a", _day(d2), 3), ("b", _day(d2), 5)])
    assert store.bot_hits("a", d1, d3) == 5  # first read: from the table
    store.append([], [("a", _day(d2), 4), ("a", _day(d3), 1), ("c", _day(d1), 9)])
    cases = [("a", d1, d3, 10), ("a", d2, d2, 7), ("a", d3, d3, 1), ("b", d1, d3, 5),
             ("c", d1, d1, 9), ("c", d2, d3, 0), ("nobody", d1, d3, 0)]  # fmt: skip
    for site, first, last, hits in cases:
        assert store.bot_hits(site, first, last) == hits
        assert _table(store, site, first, last) == hits
    store.close()
    reopened = EventStore(path)
    for site, first, last, hits in cases:
        assert reopened.bot_hits(site, first, last) == hits
    reopened.close()
