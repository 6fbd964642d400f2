"""Giving a deletion's bytes back: copy the events file's live rows into a new file and
swap it in while the server runs (EventStore.rewrite), and the gate that lets readers
share the file except for the instant of the swap.

DuckDB never overwrites a deleted row's bytes: a DELETE marks the rows, a checkpoint moves
the blocks they sat in to the free list, and the old bytes stay there until the space is
reused. COPY FROM DATABASE into a new file (the compaction the DuckDB manual gives) holds
live rows only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


class ReadGate:
    """Readers share it; the swap takes it alone for its instant (it waits for the readers
    in flight and holds new ones). Re-entrant per thread, so a reader that reads again
    inside a read never waits on a swap waiting on it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._closed = False
        self._mine = threading.local()

    def enter(self) -> None:
        depth = getattr(self._mine, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._closed:
                    self._cond.wait()
                self._readers += 1
        self._mine.depth = depth + 1

    def leave(self) -> None:
        self._mine.depth -= 1
        if self._mine.depth == 0:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._closed = True
            try:
                while self._readers:
                    self._cond.wait()
                yield
            finally:
                self._closed = False
                self._cond.notify_all()


def rewrite_path(path: Path) -> Path:
    """Where the new copy of the events file is built (beside it)."""
    return path.with_name(path.name + ".rewrite")


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def remove_with_wal(path: Path) -> None:
    for leftover in (path, wal_path(path)):
        leftover.unlink(missing_ok=True)


def copy_live(cur: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """Copy the live rows of the database `cur` writes (the file `path`) into a new file
    beside it; returns the copy's path. The caller holds the writer."""
    fresh = rewrite_path(path)
    remove_with_wal(fresh)
    cur.execute("CHECKPOINT")  # no WAL left beside the file that goes
    row = cur.execute("SELECT current_database()").fetchone()
    source = str(row[0]) if row else ""
    target = str(fresh.resolve()).replace("'", "''")
    cur.execute(f"ATTACH '{target}' AS avocet_rewrite")
    try:
        cur.execute(f'COPY FROM DATABASE "{source}" TO avocet_rewrite')
        cur.execute("CHECKPOINT avocet_rewrite")
    finally:
        cur.execute("DETACH avocet_rewrite")
    return fresh


def swap_in(path: Path, fresh: Path) -> None:
    """Put the copy in the closed file's place, durably (a crash before leaves the old
    file as it was; the copy is removed on next open). A WAL beside the old file belongs
    to it: then the old file stays."""
    if not wal_path(path).exists():
        os.replace(fresh, path)
        _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    """fsync a directory, so a rename in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
