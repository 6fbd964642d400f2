"""The ingest journal (#23): while something holds DuckDB's writer (a checkpoint, a job's
transaction, a rewrite), a batch is made durable in the journal and acknowledged at once;
it reaches DuckDB when the writer is let go, exactly once, also across kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.storage.events import COLUMNS, EventStore

ROOT = Path(__file__).resolve().parents[1]
DAY = 20_400  # 2025-11-08, days since the epoch
TS = DAY * 86_400 * 1_000_000


def rows(tag: str, count: int) -> list[tuple[Any, ...]]:
    """Event rows in the events table's column order; pathname /<tag>/<i>."""
    base: dict[str, Any] = dict.fromkeys(COLUMNS)
    out = []
    for i in range(count):
        values = {
            **base,
            "site_id": "s1",
            "ts": TS + i,
            "day": DAY,
            "name": "Purchase" if i % 2 else "pageview",
            "visitor_id": i,
            "session_id": i,
            "hostname": "example.com",
            "pathname": f"/{tag}/{i}",
            "entry_page": f"/{tag}/0",
            "props": [("plan", "pro")] if i % 2 else None,
            "revenue": Decimal("12.50") if i % 2 else None,
            "currency": "EUR" if i % 2 else None,
            "interactive": True,
        }
        out.append(tuple(values[c] for c in COLUMNS))
    return out


def count(store: EventStore, where: str = "TRUE") -> int:
    return int(store.query(f"SELECT count(*) FROM events WHERE {where}")[0][0])


@contextmanager
def held(store: EventStore) -> Iterator[threading.Event]:
    """Another thread holds the writer (as a checkpoint would) until the event is set."""
    release, taken = threading.Event(), threading.Event()

    def hold() -> None:
        with store._locked():
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


def test_a_batch_is_acknowledged_while_the_writer_is_held_and_lands_after(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path / "events.duckdb")
    journal = tmp_path / "events.duckdb.journal"
    try:
        store.append(rows("before", 3))
        with held(store) as release:
            started = time.monotonic()
            store.append(rows("during", 5), [("s1", DAY, 2)], [("s1", DAY, "ip", 1)])
            store.append(rows("again", 4))
            # Back without waiting for the holder (it holds for up to 30 s)...
            assert time.monotonic() - started < 5
            assert not release.is_set()
            # ...on disk in the journal, not yet in DuckDB.
            assert journal.stat().st_size > 0
            assert count(store) == 3
        # The holder commits the journal as it lets go: everything once, the file emptied.
        assert count(store) == 12
        assert count(store, "pathname LIKE '/during/%'") == 5
        assert store.query("SELECT sum(hits) FROM bot_counts")[0][0] == 2
        assert store.query("SELECT sum(hits) FROM excluded_counts")[0][0] == 1
        assert store.query(
            "SELECT props['plan'], revenue, currency FROM events WHERE pathname = '/during/1'"
        ) == [("pro", Decimal("12.500000"), "EUR")]
        assert journal.stat().st_size == 0
        assert store.query("SELECT seq FROM journal_applied")[0][0] == 2
        # The journal's bookkeeping leaves no transaction open: the file still checkpoints
        # and rewrites (a leftover one made DuckDB refuse both).
        store.checkpoint()
        store.rewrite()
        assert count(store) == 12
    finally:
        store.close()
    assert not journal.exists()  # an empty journal goes with a clean close


def test_an_idle_server_commits_the_journal_when_the_writer_is_let_go(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.duckdb")
    try:
        with held(store) as release:
            store.append(rows("idle", 2))
            assert count(store) == 0
            release.set()
        # No other batch comes: the holder's exit (and the flusher thread) commit it.
        deadline = time.monotonic() + 5
        while count(store) != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert count(store) == 2
    finally:
        store.close()


# A child process: holds the writer for ever (a checkpoint that never ends), journals
# batches, says how many, and waits to be killed.
CHILD = """
import sys, threading, time
sys.path.insert(0, {root!r})
from tests.test_ingest_journal import rows
from app.storage.events import EventStore
store = EventStore(__import__("pathlib").Path({path!r}))
taken = threading.Event()
def hold():
    with store._locked():
        taken.set()
        time.sleep(3600)
threading.Thread(target=hold, daemon=True).start()
taken.wait()
for i in range(6):
    store.append(rows(f"b{{i}}", 7))
    print(i, flush=True)
time.sleep(3600)
"""


def test_journaled_batches_survive_kill_9_and_apply_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    EventStore(path).close()  # migrated
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    acked = [child.stdout.readline().strip() for _ in range(6)]
    assert acked == ["0", "1", "2", "3", "4", "5"]
    child.send_signal(signal.SIGKILL)
    child.wait()
    journal = path.with_name("events.duckdb.journal")
    kept = journal.read_bytes()
    assert kept  # the six batches were acknowledged from here

    store = EventStore(path)  # recovery applies them
    try:
        assert count(store) == 42
        assert store.query(
            "SELECT count(DISTINCT pathname), count(*) FILTER (WHERE name = 'Purchase') FROM events"
        ) == [(42, 18)]
    finally:
        store.close()
    assert not journal.exists()

    # A crash after the commit but before the journal was emptied: the same entries are
    # found again, at or below the recorded seq, and skipped. A torn last write is dropped.
    journal.write_bytes(kept + kept[:40])
    store = EventStore(path)
    try:
        assert count(store) == 42
        assert store.query("SELECT seq FROM journal_applied")[0][0] == 6
        store.append(rows("after", 1))  # numbering goes on after the recorded seq
        assert count(store) == 43
    finally:
        store.close()


def test_an_entry_journaled_while_earlier_ones_commit_stays_until_it_commits(
    tmp_path: Path,
) -> None:
    # The holder copies the pending entries, commits them without the journal's lock, then
    # drops them: a batch journaled in between must stay, in memory and in the file.
    from app.storage.events import rows_to_arrow
    from app.storage.journal import Journal

    journal = Journal(tmp_path / "j")
    journal.append(rows_to_arrow(rows("a", 2)), [], [])
    copied = list(journal.pending)
    journal.append(rows_to_arrow(rows("b", 3)), [("s1", DAY, 1)], [])
    journal.applied(len(copied))  # "a" is in DuckDB now, with seq 1
    assert [e.seq for e in journal.pending] == [2]
    assert (tmp_path / "j").stat().st_size > 0
    journal.close()
    again = Journal(tmp_path / "j")
    [entry] = again.recover(applied=1)  # "a" is skipped by its seq, "b" comes back
    assert (entry.seq, entry.table.num_rows if entry.table else 0, entry.bots) == (
        2,
        3,
        [("s1", DAY, 1)],
    )
    assert again.next_seq == 3
    again.applied(1)
    assert (tmp_path / "j").stat().st_size == 0
    again.close()
