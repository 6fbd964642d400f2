"""The DuckDB event store: one file, one writer cursor, read cursors per query."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from app.config import DuckDBSettings
from app.storage.journal import Journal
from app.storage.migrate import migrations
from app.storage.rewrite import (
    ReadGate,
    copy_live,
    remove_with_wal,
    rewrite_path,
    swap_in,
    wal_path,
)
from app.storage.rollups import (
    ROLLUP_COLUMNS,
    TOTALS_ROWS,
    DailyTotals,
    insert_rollups,
    rollup_table,
)

# The events table, in column order. An ingested row is a tuple in exactly this order;
# ts is microseconds since the Unix epoch (UTC), day is days since the epoch (site-local).
EVENT_SCHEMA = pa.schema(
    [
        ("site_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("day", pa.date32()),
        ("name", pa.string()),
        ("visitor_id", pa.int64()),
        ("session_id", pa.int64()),
        ("hostname", pa.string()),
        ("pathname", pa.string()),
        ("entry_page", pa.string()),
        ("referrer", pa.string()),
        ("source", pa.string()),
        ("channel", pa.string()),
        ("utm_source", pa.string()),
        ("utm_medium", pa.string()),
        ("utm_campaign", pa.string()),
        ("utm_content", pa.string()),
        ("utm_term", pa.string()),
        ("device", pa.string()),
        ("browser", pa.string()),
        ("browser_version", pa.string()),
        ("os", pa.string()),
        ("os_version", pa.string()),
        ("screen", pa.string()),
        ("country", pa.string()),
        ("region", pa.string()),
        ("city", pa.string()),
        ("props", pa.map_(pa.string(), pa.string())),
        ("revenue", pa.decimal128(18, 6)),
        ("currency", pa.string()),
        ("interactive", pa.bool_()),
        ("engagement_ms", pa.int32()),
        ("scroll_depth", pa.int16()),
        ("user_key", pa.int64()),
    ]
)
COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

Row = tuple[Any, ...]
EXPORT_BATCH = 10_000  # rows per batch of export_batches (either store)
# What export_batches orders each table by (either store).
EXPORT_ORDER = {"events": "ts", "daily_stats": "day, property, value"}
_EPOCH = date(1970, 1, 1)
# What daily_stats() returns of a rollup row (both stores).
DAILY_STATS_COLUMNS = (
    "day, value, visitors, visits, pageviews, events, bounces, duration, scroll_sum,"
    " scroll_count, engaged_ms, engaged_visitors"
)
# A user's export (the privacy API): every column but ids, agents and property values.
USER_COLUMNS = (
    "name, hostname, pathname, referrer, source, channel, utm_source, utm_medium,"
    " utm_campaign, utm_content, utm_term, device, browser, os, screen, country, region,"
    " city, revenue, currency, engagement_ms, scroll_depth"
)


class StoreLocked(Exception):
    """Another process (normally the running server) holds the events file."""


def _count(cur: duckdb.DuckDBPyConnection) -> int:
    """The row count a DELETE or UPDATE just returned."""
    row = cur.fetchone()
    return int(row[0]) if row else 0


def rows_to_arrow(rows: Sequence[Row]) -> pa.Table:
    """Columnar Arrow table from row tuples (one pass per column, no per-row objects)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    arrays = [
        pa.array(column, type=field.type)
        for column, field in zip(columns, EVENT_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def warm_arrow() -> None:
    """What pyarrow does on its first conversion of Python values: it imports pandas when
    that is installed (the clickhouse extra's chdb brings it), ~1-2 s that the first hit's
    commit would otherwise wait for, and every hit behind it."""
    rows_to_arrow([])


def _literal(text: str) -> str:
    """A SQL string literal (SET takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


class EventStore:
    """Owns the DuckDB connection. append() is called from one writer thread only."""

    engine = "duckdb"  # the SQL its query() takes (app/query/dialect.py)

    def __init__(self, path: Path, settings: DuckDBSettings | None = None) -> None:
        settings = settings or DuckDBSettings()
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": settings.memory_limit,
            # DuckDB checkpoints inside the commit that crosses this, and makes the commits
            # behind it wait (130-240 ms): the server checkpoints from a job instead (see
            # checkpoint_due), through the journal; this is only the backstop.
            "checkpoint_threshold": f"{settings.checkpoint_wal_mb * 4}MB",
        }
        self.checkpoint_bytes = settings.checkpoint_wal_mb << 20
        if settings.threads:
            self._config["threads"] = settings.threads
        try:
            self._con = duckdb.connect(str(path), config=self._config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"{path} is in use by another process (is `avocet serve` running?)"
                ) from exc
            raise
        self.path = path
        # A copy a crash interrupted (rewrite()): the file above is whole, this one not.
        remove_with_wal(rewrite_path(path))
        self._migrate()
        self._writer = self._con.cursor()
        self._lock = threading.Lock()
        # Batches acknowledged while the writer was held (app/storage/journal.py); the
        # journal lock is taken after the writer lock, never before it.
        self._journal_lock = threading.Lock()
        self._journal: Journal | None = None
        self._flusher: threading.Thread | None = None
        self._flush_wanted = threading.Event()
        self._closing = False
        if str(path) != ":memory:":
            self._journal = Journal(path.with_name(path.name + ".journal"))
            # fetchall: a result left unread keeps its transaction open, and DuckDB then
            # refuses to checkpoint once the journal's seq has been updated.
            [(applied,)] = self._con.execute("SELECT max(seq) FROM journal_applied").fetchall()
            self._journal.recover(int(applied or 0))
        self._gate = ReadGate()
        # rolled_days(): the days each site has rollups for, read once, dropped on change.
        self._rolled: dict[str, frozenset[date]] = {}
        # rollup_totals(): each site's daily totals rows, read once, dropped on change.
        self._totals: dict[str, DailyTotals] = {}
        self._rolled_generation = 0
        # bot_counts as {site: {day: hits}}, read on first use and kept current by append()
        # (this process is the table's only writer): no statement per stats answer.
        self._bots: dict[str, dict[date, int]] | None = None
        self._bots_lock = threading.Lock()
        with self._locked():  # entries a crash left in the journal go in first
            pass

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = (row[0] if row else None) or 0
        for migration in migrations("events"):
            if migration.version <= current:
                continue
            con.execute("BEGIN")
            con.execute(migration.sql)
            con.execute("INSERT INTO schema_version VALUES (?)", [migration.version])
            con.execute("COMMIT")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The writer lock, for anything but append(): the journal's batches are committed
        as it is taken (what was acknowledged before comes first) and again before it is
        let go (what was acknowledged meanwhile is not left waiting)."""
        with self._lock:
            self._apply_journal()
            try:
                yield
            finally:
                self._apply_journal()

    def _apply_journal(
        self,
        table: pa.Table | None = None,
        bots: Sequence[tuple[str, int, int]] = (),
        excluded: Sequence[tuple[str, int, str, int]] = (),
    ) -> None:
        """With the writer lock held: commit the journal's entries, then this batch, in one
        transaction that records the last entry's seq; then drop them from the journal.

        The journal lock is held only to copy and to drop the entries, never during the
        commit: the holder may be a background thread at a low priority (app/jobs/
        background.py), and the writer, journaling meanwhile, must never wait for it."""
        journal = self._journal
        with self._journal_lock:
            entries = list(journal.pending) if journal is not None else []
        if not entries:
            if table is not None or bots or excluded:
                self._commit(table, list(bots), list(excluded), None)
            return
        assert journal is not None
        tables = [e.table for e in entries if e.table is not None]
        if table is not None:
            tables.append(table)
        all_bots = [b for e in entries for b in e.bots] + list(bots)
        all_excluded = [x for e in entries for x in e.excluded] + list(excluded)
        merged = pa.concat_tables(tables) if tables else None
        self._commit(merged, all_bots, all_excluded, entries[-1].seq)
        with self._journal_lock:
            journal.applied(len(entries))

    def _commit(
        self,
        table: pa.Table | None,
        bots: list[tuple[str, int, int]],
        shielded: list[tuple[str, int, str, int]],
        seq: int | None,
    ) -> None:
        """One transaction: rows, bot and excluded counters, the journal's seq (lock held)."""
        cur = self._writer
        if not bots and not shielded and seq is None:
            if table is not None:
                # One statement is one transaction, with its own fdatasync: without
                # BEGIN and COMMIT statements a 64-row commit costs 4.8 ms of CPU
                # instead of 6.4. `batch` is read by DuckDB's replacement scan.
                batch = table  # noqa: F841
                cur.execute("INSERT INTO events SELECT * FROM batch")
            return
        cur.execute("BEGIN")
        try:
            if table is not None:
                # from_arrow: no register/unregister round trip (~0.6 ms a commit)
                cur.from_arrow(table).insert_into("events")
            if bots:
                cur.executemany(
                    "INSERT INTO bot_counts VALUES (?, DATE '1970-01-01' + ?::INTEGER, ?)"
                    " ON CONFLICT DO UPDATE SET hits = hits + excluded.hits",
                    bots,
                )
            if shielded:
                cur.executemany(
                    "INSERT INTO excluded_counts"
                    " VALUES (?, DATE '1970-01-01' + ?::INTEGER, ?, ?)"
                    " ON CONFLICT DO UPDATE SET hits = hits + excluded.hits",
                    shielded,
                )
            if seq is not None:
                cur.execute("UPDATE journal_applied SET seq = ?", [seq])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if self._bots is not None and bots:  # bot hits were committed
            with self._bots_lock:
                for site_id, day, hits in bots:
                    days = self._bots.setdefault(site_id, {})
                    at = _EPOCH + timedelta(days=day)
                    days[at] = days.get(at, 0) + hits

    @contextmanager
    def _transaction(self, rollups_of: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer cursor inside BEGIN .. COMMIT (ROLLBACK on error), with the write lock
        held. rollups_of: a site whose rollups it changes (its rolled_days() cache is dropped
        whatever the outcome)."""
        with self._locked():
            cur = self._writer
            cur.execute("BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                if rollups_of is not None:
                    self._rolled_generation += 1
                    self._rolled.pop(rollups_of, None)
                    self._totals.pop(rollups_of, None)

    @contextmanager
    def attached(self, path: Path, alias: str) -> Iterator[None]:
        """Another DuckDB file, read-only, as `alias` in this store's queries (an import's
        scratch events, copied in by a transaction: attached before it, as DuckDB detaches
        nothing a transaction has read)."""
        cur = self._con.cursor()
        try:
            quoted = str(path).replace("'", "''")
            cur.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
            yield
        finally:
            cur.execute(f"DETACH DATABASE IF EXISTS {alias}")
            cur.close()

    def append(
        self,
        rows: Sequence[Row],
        bot_hits: Iterable[tuple[str, int, int]] = (),
        excluded: Iterable[tuple[str, int, str, int]] = (),
    ) -> None:
        """Insert rows, add bot hits (site_id, day, hits) and excluded hits (site_id, day,
        reason, hits) in one transaction: all or none. While something else holds the
        writer (a checkpoint, a job's transaction, a rewrite), the batch goes to the journal
        instead and is committed here when the writer is free: durable either way on
        return, never waiting behind that holder for more than one journal commit."""
        table = rows_to_arrow(rows) if rows else None
        bots = list(bot_hits)
        shielded = list(excluded)
        if table is None and not bots and not shielded:
            return
        if self._journal is not None and not self._lock.acquire(blocking=False):
            with self._journal_lock:
                if self._lock.acquire(blocking=False):  # let go meanwhile
                    held = True
                else:
                    self._journal.append(table, bots, shielded)
                    held = False
            if not held:
                self._flush_soon()
                return
        elif self._journal is None:
            self._lock.acquire()
        try:
            self._apply_journal(table, bots, shielded)
        finally:
            self._lock.release()

    def _flush_soon(self) -> None:
        """A thread that commits the journal as soon as the writer is let go (an idle server
        has no next batch to do it)."""
        self._flush_wanted.set()
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_forever, name="avocet-journal", daemon=True
            )
            self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            self._flush_wanted.wait()
            self._flush_wanted.clear()
            if self._closing:
                return
            with self._locked():
                pass

    def excluded_hits(self, site_id: str, since: date) -> dict[str, int]:
        """Hits the site's exclusion rules dropped on its local days since `since`, per
        kind of rule."""
        rows = self.query(
            "SELECT reason, sum(hits) FROM excluded_counts WHERE site_id = ? AND day >= ?"
            " GROUP BY reason",
            [site_id, since],
        )
        return {str(reason): int(n) for reason, n in rows}

    def bot_hits(self, site_id: str, first: date, last: date) -> int:
        """Bot hits dropped for the site on its local days first..last (from memory)."""
        if self._bots is None:
            with self._locked():  # no commit between reading the table and keeping it
                if self._bots is None:
                    loaded: dict[str, dict[date, int]] = {}
                    for site, day, hits in self.query("SELECT site_id, day, hits FROM bot_counts"):
                        loaded.setdefault(site, {})[day] = int(hits)
                    self._bots = loaded
        with self._bots_lock:
            days = self._bots.get(site_id)
            return sum(h for d, h in days.items() if first <= d <= last) if days else 0

    def rolled_days(self, site_id: str) -> frozenset[date]:
        """The site's days that have rollups. Cached: every rollup question needs it, and
        rollup_days only changes here (replace_rollups), ~0.5-1 ms a question otherwise."""
        cached = self._rolled.get(site_id)
        if cached is not None:
            return cached
        generation = self._rolled_generation
        days = frozenset(
            r[0] for r in self.query("SELECT day FROM rollup_days WHERE site_id = ?", [site_id])
        )
        with self._lock:  # a change committed meanwhile: don't cache what it replaced
            if generation == self._rolled_generation:
                self._rolled[site_id] = days
        return days

    def rollup_totals(self, site_id: str) -> DailyTotals:
        """The site's daily totals (the rollup rows of property ''), held in memory like the
        bot counters: unfiltered aggregates and series, the most asked questions, sum them
        without a statement (~3 ms each here, even on a tiny table)."""
        cached = self._totals.get(site_id)
        if cached is not None:
            return cached
        generation = self._rolled_generation
        totals = DailyTotals(self.query(TOTALS_ROWS, [site_id]))
        with self._lock:  # a change committed meanwhile: don't cache what it replaced
            if generation == self._rolled_generation:
                self._totals[site_id] = totals
        return totals

    def replace_rollups(
        self,
        site_id: str,
        days: Sequence[object],
        rows: Sequence[tuple[Any, ...]],
        counts: Sequence[tuple[object, int]],
    ) -> None:
        """Swap a site's rollup rows for these days in one transaction (readers see the old
        rows or the new, never a mix; a crash leaves the old)."""
        with self._transaction(site_id) as cur:
            for table in ("daily_rollups", "rollup_days"):
                cur.execute(
                    f"DELETE FROM {table} WHERE site_id = ? AND day IN (SELECT unnest(?::DATE[]))",
                    [site_id, list(days)],
                )
            if rows:
                insert_rollups(cur, cur.from_arrow(rollup_table(rows)))
            if counts:
                cur.executemany(
                    "INSERT INTO rollup_days VALUES (?, ?, ?, now()::TIMESTAMP, false)",
                    [(site_id, day, n) for day, n in counts],
                )

    def delete_rolled_up_raw(self, site_id: str, before: object) -> None:
        """Delete raw events of rolled-up days before `before`, in one transaction."""
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM events WHERE site_id = ? AND day < ?"
                " AND day IN (SELECT day FROM rollup_days WHERE site_id = ?)",
                [site_id, before, site_id],
            )
            cur.execute(
                "UPDATE rollup_days SET pruned = true WHERE site_id = ? AND day < ?",
                [site_id, before],
            )

    def redate_site(
        self,
        site_id: str,
        local_day: str,
        params: Sequence[object],
        arrivals: Sequence[tuple[Any, ...]] = (),
        zone: str = "",
    ) -> int:
        """Set the `day` of a site's raw events to `local_day` (an SQL DATE expression of
        ts, with its parameters) and drop the rollups that can be rebuilt from them (the
        days with raw events), in one transaction; returns how many events changed day.
        A pruned day keeps its rollup, plus `arrivals` (rollup rows of the events that move
        onto it), and those events leave the raw table, as pruning would have done.
        Ingestion waits meanwhile (~0.6 s for 2.3M events, 0.4M of them moved)."""
        with self._transaction(site_id) as cur:
            cur.execute(
                f"UPDATE events SET day = {local_day} WHERE site_id = ? AND day <> {local_day}",
                [*params, site_id, *params],
            )
            row = cur.fetchone()
            moved = int(row[0]) if row else 0
            cur.execute(
                "DELETE FROM daily_rollups WHERE site_id = ? AND day IN"
                " (SELECT day FROM rollup_days WHERE site_id = ? AND NOT pruned)",
                [site_id, site_id],
            )
            cur.execute("DELETE FROM rollup_days WHERE site_id = ? AND NOT pruned", [site_id])
            if arrivals:
                self._add_to_pruned_days(cur, site_id, arrivals)
        return moved

    def export_batches(
        self,
        table: str,
        columns: Sequence[str],
        site_id: str,
        first: date | None,
        last: date | None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        select = ", ".join(f'"{c}"' for c in columns)
        with self.reading() as cur:
            cur.execute(
                f'SELECT {select} FROM "{table}" WHERE site_id = ?'
                " AND day BETWEEN coalesce(?::DATE, DATE '0001-01-01')"
                f" AND coalesce(?::DATE, DATE '9999-12-31') ORDER BY {EXPORT_ORDER[table]}",
                [site_id, first, last],
            )
            while batch := cur.fetchmany(EXPORT_BATCH):
                yield batch

    def pending_redate(self, site_id: str) -> str | None:
        """None: a re-dating here is one transaction, never left half done."""
        return None

    @staticmethod
    def _add_to_pruned_days(
        cur: duckdb.DuckDBPyConnection, site_id: str, arrivals: Sequence[tuple[Any, ...]]
    ) -> None:
        """Inside redate_site's transaction: sum the arrivals into their pruned days' rows,
        count their events there, and delete them from the raw table."""
        arrived = rollup_table(arrivals)  # noqa: F841 (read by DuckDB's replacement scan)
        components = ", ".join(f"sum({c}) AS {c}" for c in ROLLUP_COLUMNS[4:])
        columns = ", ".join(ROLLUP_COLUMNS)
        cur.execute(
            "CREATE TEMP TABLE merged_rollups AS"
            f" SELECT site_id, day, property, value, {components} FROM"
            f" (SELECT {columns} FROM daily_stats WHERE site_id = ?"
            "   AND day IN (SELECT day FROM arrived)"
            f"  UNION ALL SELECT {columns} FROM arrived)"
            " GROUP BY site_id, day, property, value",
            [site_id],
        )
        cur.execute(
            "DELETE FROM daily_rollups WHERE site_id = ?"
            " AND day IN (SELECT day FROM merged_rollups)",
            [site_id],
        )
        insert_rollups(cur, cur.table("merged_rollups"))
        cur.execute("DROP TABLE merged_rollups")
        pruned = "SELECT day FROM rollup_days WHERE site_id = ? AND pruned"
        cur.execute(
            "UPDATE rollup_days SET events = events + moved.n FROM"
            f" (SELECT day, count(*) AS n FROM events WHERE site_id = ? AND day IN ({pruned})"
            "  GROUP BY day) AS moved"
            " WHERE rollup_days.site_id = ? AND rollup_days.day = moved.day",
            [site_id, site_id, site_id],
        )
        cur.execute(
            f"DELETE FROM events WHERE site_id = ? AND day IN ({pruned})", [site_id, site_id]
        )

    def compact_day(self, day: date) -> int:
        """Rewrite one day's raw events (every site's: `day` is site-local, the caller picks
        a day every zone has finished) sorted by site, session and time, in one transaction,
        and record it in compacted_days; returns how many rows. Ingestion waits meanwhile
        (~0.4 s for 25k events)."""
        with self._transaction() as cur:
            cur.execute(
                "CREATE TEMP TABLE compacting AS SELECT * FROM events WHERE day = ?"
                " ORDER BY site_id, session_id, ts",
                [day],
            )
            cur.execute("DELETE FROM events WHERE day = ?", [day])
            cur.execute("INSERT INTO events SELECT * FROM compacting")
            row = cur.execute("SELECT count(*) FROM compacting").fetchone()
            count = int(row[0]) if row else 0
            cur.execute("DROP TABLE compacting")
            cur.execute("INSERT INTO compacted_days VALUES (?, ?, now()::TIMESTAMP)", [day, count])
        return count

    def delete_user_events(self, site_id: str, user_key: int) -> int:
        """Delete every raw event of one server-side user (by user_key) of a site, in one
        transaction; returns how many went."""
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM events WHERE site_id = ? AND user_key = ?", [site_id, user_key]
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def delete_site_data(
        self,
        site_id: str,
        first: date | None = None,
        last: date | None = None,
        before: datetime | None = None,
    ) -> dict[str, int]:
        """Delete a site's raw events, rollups, bot and exclusion counters of its days
        first..last (None: unbounded), in one transaction; raw events only when stamped
        before `before` (UTC, naive; None: all), so hits that arrive after a reset was asked
        for stay. Returns rows deleted per table. The bytes stay in the file's free blocks
        until rewrite()."""
        days = (
            "day BETWEEN coalesce(?::DATE, DATE '0001-01-01')"
            " AND coalesce(?::DATE, DATE '9999-12-31')"
        )
        span: list[object] = [first, last]
        gone: dict[str, int] = {}
        with self._transaction(site_id) as cur:
            cur.execute(
                f"DELETE FROM events WHERE site_id = ? AND {days}"
                " AND ts < coalesce(?::TIMESTAMP, TIMESTAMP '9999-12-31')",
                [site_id, *span, before],
            )
            gone["events"] = _count(cur)
            for table in ("daily_rollups", "rollup_days", "bot_counts", "excluded_counts"):
                cur.execute(f"DELETE FROM {table} WHERE site_id = ? AND {days}", [site_id, *span])
                gone[table] = _count(cur)
            self._bots = None  # read again on next use
        return gone

    def rewrite(self) -> int:
        """Copy the live rows into a new file and swap it in (app/storage/rewrite.py);
        returns its size in bytes. A deletion that must delete (a site, a reset, a privacy
        request) ends with this. Ingest goes to the journal meanwhile (~1 s per million
        events here), readers wait only for the swap."""
        with self._locked():
            fresh = copy_live(self._writer, self.path)
            with self._gate.exclusive():
                self._writer.close()
                self._con.close()
                swap_in(self.path, fresh)
                self._con = duckdb.connect(str(self.path), config=self._config)
                self._writer = self._con.cursor()
                self._rolled_generation += 1
                self._rolled.clear()
                self._totals.clear()
            remove_with_wal(fresh)
        return self.path.stat().st_size

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor for one reader (cursors are cheap; one per query and thread), closed
        after; rewrite() waits for it before it swaps the file."""
        self._gate.enter()
        try:
            cur = self._con.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            self._gate.leave()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one read on a fresh cursor (safe from any thread)."""
        with self.reading() as cur:
            return cur.execute(sql, list(params)).fetchall()

    def query_dicts(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Like query(), with rows as dicts keyed by column name."""
        with self.reading() as cur:
            cur.execute(sql, list(params))
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # Reads the jobs, the ingest pipeline and the UI need besides stats questions (the same
    # methods on the ClickHouse store, in its SQL).

    def day_counts(self, site_id: str, first: date | None, last: date) -> dict[date, int]:
        """Raw events per stored day of the site, over first..last (None: from the start)."""
        rows = self.query(
            "SELECT day, count(*) FROM events WHERE site_id = ?"
            " AND day BETWEEN coalesce(?::DATE, DATE '0001-01-01') AND ? GROUP BY day",
            [site_id, first, last],
        )
        return {day: int(n) for day, n in rows}

    def rollup_day_states(self, site_id: str) -> dict[date, tuple[int, bool]]:
        """Each rolled-up day of the site: (raw events when it was built, pruned since)."""
        rows = self.query(
            "SELECT day, events, pruned FROM rollup_days WHERE site_id = ?", [site_id]
        )
        return {day: (int(n), bool(pruned)) for day, n, pruned in rows}

    def prunable(self, site_id: str, before: date) -> int:
        """Raw events of the site's rolled-up days before `before` (what pruning deletes)."""
        rows = self.query(
            "SELECT count(*) FROM events WHERE site_id = ? AND day < ?"
            " AND day IN (SELECT day FROM rollup_days WHERE site_id = ?)",
            [site_id, before, site_id],
        )
        return int(rows[0][0])

    def first_day(self, site_id: str) -> date | None:
        """The site's first stored day: of raw events, or of rollups whose raw events went."""
        rows = self.query(
            "SELECT least((SELECT min(day) FROM events WHERE site_id = ?),"
            " (SELECT min(day) FROM rollup_days WHERE site_id = ?))",
            [site_id, site_id],
        )
        return rows[0][0] if rows else None

    def data_inventory(self, site_id: str, first: date | None, last: date | None) -> dict[str, int]:
        """The site's raw events, rolled-up days and rollup rows of its days first..last
        (either end open when None): what a deletion or reset removes."""
        where = "site_id = ? AND day >= coalesce(?, day) AND day <= coalesce(?, day)"
        row = self.query(
            f"SELECT (SELECT count(*) FROM events WHERE {where}),"
            f" (SELECT count(*) FROM rollup_days WHERE {where}),"
            f" (SELECT count(*) FROM daily_rollups WHERE {where})",
            [site_id, first, last] * 3,
        )[0]
        return {"events": int(row[0]), "rolled_up_days": int(row[1]), "rollup_rows": int(row[2])}

    def user_events(
        self, site_id: str, user_key: int, since: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """One server-side user's events since `since` (UTC, naive), oldest first: ts,
        day, USER_COLUMNS and property_keys (the props' keys, never their values)."""
        return self.query_dicts(
            f"SELECT ts, day, {USER_COLUMNS}, map_keys(props) AS property_keys FROM events"
            " WHERE site_id = ? AND user_key = ? AND ts >= ? ORDER BY ts, name LIMIT ?",
            [site_id, user_key, since, limit],
        )

    def user_days(self, site_id: str, user_key: int) -> set[date]:
        """The days with raw events of one server-side user of the site."""
        rows = self.query(
            "SELECT DISTINCT day FROM events WHERE site_id = ? AND user_key = ?",
            [site_id, user_key],
        )
        return {r[0] for r in rows}

    def imported_span(self, site_id: str) -> tuple[date, date] | None:
        """The first and last day of the site's imported aggregates (None: it has none)."""
        first, last = self.query(
            "SELECT min(day), max(day) FROM imported_stats WHERE site_id = ?", [site_id]
        )[0]
        return None if first is None else (first, last)

    def data_span(self, site_id: str) -> tuple[date, date] | None:
        """The site's first and last local day with data (raw events or rollups)."""
        row = self.query(
            "SELECT min(d), max(d) FROM (SELECT min(day) AS d FROM events WHERE site_id = ?"
            " UNION ALL SELECT max(day) FROM events WHERE site_id = ?"
            " UNION ALL SELECT min(day) FROM rollup_days WHERE site_id = ?"
            " UNION ALL SELECT max(day) FROM rollup_days WHERE site_id = ?)",
            [site_id] * 4,
        )[0]
        return (row[0], row[1]) if row[0] is not None else None

    def pruned_days(self, site_id: str, first: date, last: date) -> list[date]:
        """The site's days first..last that are rollups only (their raw events pruned)."""
        rows = self.query(
            "SELECT day FROM rollup_days WHERE site_id = ? AND pruned AND day BETWEEN ? AND ?"
            " ORDER BY day",
            [site_id, first, last],
        )
        return [r[0] for r in rows]

    def daily_stats(self, site_id: str, prop: str, days: Sequence[date]) -> list[dict[str, Any]]:
        """The rollup rows of one property ("" = the day's totals) on the given days."""
        return self.query_dicts(
            f"SELECT {DAILY_STATS_COLUMNS} FROM daily_stats"
            " WHERE site_id = ? AND property = ? AND day IN (SELECT unnest(?::DATE[]))",
            [site_id, prop, list(days)],
        )

    def visitors_since(self, site_id: str, since: datetime) -> int:
        """Distinct visitors of the site with an event at or after `since` (UTC, naive)."""
        rows = self.query(
            "SELECT count(DISTINCT visitor_id) FROM events WHERE site_id = ? AND ts >= ?",
            [site_id, since],
        )
        return int(rows[0][0])

    def newest_events(self, site_id: str, limit: int) -> list[tuple[Any, ...]]:
        """(ts, name, pathname, source, device, country) of the site's newest events but
        engagement pings, newest first."""
        return self.query(
            "SELECT ts, name, pathname, source, device, country FROM events"
            " WHERE site_id = ? AND name != 'engagement' ORDER BY ts DESC LIMIT ?",
            [site_id, limit],
        )

    def open_sessions(
        self, since: datetime, columns: Sequence[str]
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """(the highest session id stored, and each visitor's newest event since `since`:
        site_id, visitor_id, session_id, ts, then `columns`): what a restarted pipeline
        rebuilds its open sessions from."""
        top = self.query("SELECT coalesce(max(session_id), 0) FROM events")
        recent = self.query(
            "SELECT DISTINCT ON (site_id, visitor_id) site_id, visitor_id, session_id, ts,"
            f" {', '.join(columns)} FROM events WHERE ts >= ?"
            " ORDER BY site_id, visitor_id, ts DESC",
            [since],
        )
        return int(top[0][0]), recent

    def usage(self) -> tuple[int, int]:
        """(the file's size, the bytes of its used blocks): what a user sees, and what the
        data takes. Freed blocks (deleted or rewritten rows, after a checkpoint) make the
        difference; DuckDB reuses them for new data but never gives them back."""
        with self.reading() as cur:
            row = cur.execute("SELECT block_size, used_blocks FROM pragma_database_size()")
            block_size, used = row.fetchall()[0]
        return self.path.stat().st_size, int(block_size) * int(used)

    def reclaim(self, slack: float = 0.10, floor: int = 1 << 20) -> int | None:
        """After a checkpoint, rewrite the file (rewrite(): live rows only, swapped in while
        ingest goes to the journal) when its free blocks exceed `slack` of the used ones and
        `floor` bytes; returns the new size, or None when it was near its used size."""
        self.checkpoint()
        size, used = self.usage()
        if size - used <= max(floor, int(used * slack)):
            return None
        return self.rewrite()

    def wal_bytes(self) -> int:
        """The size of the WAL beside the file (0 when there is none)."""
        try:
            return wal_path(self.path).stat().st_size
        except (FileNotFoundError, OSError):
            return 0

    def checkpoint_due(self) -> bool:
        """Whether the WAL has grown past the configured size ([duckdb] checkpoint_wal_mb)."""
        return self.wal_bytes() >= self.checkpoint_bytes

    @contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """DuckDB's memory limit `limit` meanwhile, the configured one after: a setting of
        the whole database, for a process that has the store to itself (an import's)."""
        cur = self._con.cursor()
        try:
            cur.execute("SET memory_limit = " + _literal(limit))
            yield
        finally:
            cur.execute("SET memory_limit = " + _literal(str(self._config["memory_limit"])))
            cur.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the main file. Ingest goes to the journal meanwhile."""
        with self._locked():
            self._writer.execute("CHECKPOINT")

    def close(self) -> None:
        self._closing = True
        if self._flusher is not None:
            self._flush_wanted.set()
            self._flusher.join()
        with self._locked():
            pass
        with self._lock:
            self._writer.close()
            self._con.close()
            if self._journal is not None:
                self._journal.close()
                if not self._journal.path.stat().st_size:  # all in the file: none left over
                    self._journal.path.unlink()
