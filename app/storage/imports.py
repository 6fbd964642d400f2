"""What an import writes into events.duckdb, and how it is taken out again (migration
events/006). One import is one transaction either way: a failed one leaves the site as it
was, and a delete removes exactly what the import added.

An import's raw events are ordinary events whose session_id lies in the import's own
range: negative (live sessions count up from 1), 2^40 ids per import seq. Days that only
have rollups (older than the raw window, or already pruned) get the import's own rollup
rows added to theirs; those rows are kept in import_rollups, so a delete can subtract them
(rollup components are sums over visitors and sessions, and an import's visitors and
sessions are its own, so adding and subtracting are exact)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb
import pyarrow as pa

from app.errors import Conflict
from app.storage.events import EventStore
from app.storage.import_ids import MAX_SESSIONS, SEQ_BITS, inventory, session_id, session_range
from app.storage.rollups import ROLLUP_COLUMNS, insert_rollups, rollup_table
from app.storage.store import Store

if TYPE_CHECKING:
    from app.storage.clickhouse.imports import ImportStore

__all__ = ["MAX_SESSIONS", "SEQ_BITS", "session_id", "session_range"]
_COMPONENTS = ROLLUP_COLUMNS[4:]


def _on_clickhouse(store: Store) -> ImportStore | None:
    """The store as the ClickHouse imports take it, when it is ClickHouse's (by engine,
    not class: a command the server runs for the CLI gets its store wrapped). Each caller
    then imports app.storage.clickhouse.imports itself: a plain install loads none of it."""
    return cast("ImportStore", store) if store.engine == "clickhouse" else None


def _duckdb(store: Store) -> EventStore:
    return cast(EventStore, store)


def imported_hash(store: Store, site_id: str, content_hash: str) -> int | None:
    """The seq of an import of these same bytes into the site, if one is stored."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.imported_hash(ch, site_id, content_hash)
    rows = store.query(
        "SELECT seq FROM imports WHERE site_id = ? AND content_hash = ?", [site_id, content_hash]
    )
    return int(rows[0][0]) if rows else None


def recorded_imports(store: Store) -> set[tuple[str, int]]:
    """(site id, seq) of every import written whole (its record is stored; the same SQL on
    either store)."""
    return {(str(site), int(seq)) for site, seq in store.query("SELECT site_id, seq FROM imports")}


def native_days(store: Store, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last that hold data not from an import: live raw events, or
    a pruned day's rollup counting more events than the imports added to it."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.native_days(ch, site_id, first, last)
    rows = store.query(
        "SELECT DISTINCT day FROM events WHERE site_id = ? AND day BETWEEN ? AND ?"
        " AND session_id >= 0"
        " UNION SELECT r.day FROM rollup_days r WHERE r.site_id = ? AND r.pruned"
        " AND r.day BETWEEN ? AND ? AND r.events > coalesce((SELECT sum(i.events)"
        "  FROM import_days i WHERE i.site_id = r.site_id AND i.day = r.day), 0)",
        [site_id, first, last, site_id, first, last],
    )
    return {r[0] for r in rows}


def held_days(store: Store, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last that hold anything: raw events (native or imported) or
    rollups."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.held_days(ch, site_id, first, last)
    rows = store.query(
        "SELECT DISTINCT day FROM events WHERE site_id = ? AND day BETWEEN ? AND ?"
        " UNION SELECT day FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?",
        [site_id, first, last, site_id, first, last],
    )
    return {r[0] for r in rows}


def append_table(store: EventStore, table: pa.Table) -> None:
    """Insert an EVENT_SCHEMA table into a store's events (the import's scratch store), in
    the table's order."""
    batch = table  # noqa: F841 (DuckDB's replacement scan reads it by name)
    with store._transaction() as cur:
        cur.execute("INSERT INTO events SELECT * FROM batch")


def pruned_days(store: Store, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last whose raw events are gone (only rollups remain)."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.pruned_days(ch, site_id, first, last)
    rows = store.query(
        "SELECT day FROM rollup_days WHERE site_id = ? AND pruned AND day BETWEEN ? AND ?",
        [site_id, first, last],
    )
    return {r[0] for r in rows}


def _days_param(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


def _merge_rollups(
    cur: duckdb.DuckDBPyConnection, site_id: str, seq: int, days: list[date], sign: int
) -> None:
    """Add (sign 1) or subtract (sign -1) import seq's rollup rows on these days to or from
    the site's; a row left with no events and no engagement goes (as the builder writes
    none)."""
    columns = ", ".join(ROLLUP_COLUMNS)
    signed = ", ".join(f"{sign} * {c}" for c in _COMPONENTS)
    sums = ", ".join(f"sum({c}) AS {c}" for c in _COMPONENTS)
    cur.execute(
        "CREATE TEMP TABLE merged_rollups AS"
        f" SELECT site_id, day, property, value, {sums} FROM"
        f" (SELECT {columns} FROM daily_stats WHERE site_id = ?"
        "   AND day IN (SELECT unnest(?::DATE[]))"
        f"  UNION ALL SELECT site_id, day, property, value, {signed} FROM import_rollups"
        "   WHERE seq = ? AND site_id = ? AND day IN (SELECT unnest(?::DATE[])))"
        " GROUP BY site_id, day, property, value"
        " HAVING sum(events) <> 0 OR sum(engaged_ms) <> 0",
        [site_id, days, seq, site_id, days],
    )
    cur.execute(
        "DELETE FROM daily_rollups WHERE site_id = ? AND day IN (SELECT unnest(?::DATE[]))",
        [site_id, days],
    )
    insert_rollups(cur, cur.table("merged_rollups"))
    cur.execute("DROP TABLE merged_rollups")


def _drop_rollups(cur: duckdb.DuckDBPyConnection, site_id: str, days: list[date]) -> None:
    """Forget the (unpruned) rollups of these days: answers read their raw events until
    the rollups are built again."""
    for table in ("daily_rollups", "rollup_days"):
        cur.execute(
            f"DELETE FROM {table} WHERE site_id = ? AND day IN (SELECT unnest(?::DATE[]))",
            [site_id, days],
        )


def apply_import(
    store: Store,
    *,
    seq: int,
    site_id: str,
    source: str,
    content_hash: str,
    raw_from: Path | None,
    day_events: dict[date, int],
    rolled: Sequence[tuple[Any, ...]],
    rolled_days: set[date],
) -> None:
    """Write one import in one transaction: raw events (copied from the events of the
    DuckDB file raw_from, on the days that keep raw events: not rolled_days; those days'
    rollups are dropped, to be rebuilt), its rollup rows (ROLLUP_COLUMNS tuples of every
    day it touches; added to the rollups of `rolled_days`), and its record. On ClickHouse:
    in steps, rolled back by recover() when cut short."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        clickhouse.apply_import(
            ch, seq=seq, site_id=site_id, source=source, content_hash=content_hash,
            raw_from=raw_from, day_events=day_events, rolled=rolled, rolled_days=rolled_days,
        )  # fmt: skip
        return
    store = _duckdb(store)
    raw_days = _days_param(d for d in day_events if d not in rolled_days)
    rolled_list = _days_param(rolled_days)
    alias = f"import_scratch_{seq}"  # attached databases are the instance's: one per import
    scratch = store.attached(raw_from, alias) if raw_from else nullcontext()
    with scratch, store._transaction(site_id) as cur:  # one transaction, writer lock held
        if cur.execute(
            "SELECT count(*) FROM imports WHERE site_id = ? AND content_hash = ?",
            [site_id, content_hash],
        ).fetchall() != [(0,)]:
            raise Conflict("this export is already imported into the site")
        if raw_from is not None:
            cur.execute(
                f"INSERT INTO events SELECT * FROM {alias}.events"
                " WHERE NOT list_contains(?::DATE[], day)",
                [rolled_list],
            )
        if raw_days:
            _drop_rollups(cur, site_id, raw_days)
        if rolled:
            table = rollup_table(rolled)
            seqs = pa.array([seq] * table.num_rows, pa.int32())
            with_seq = table.add_column(0, "seq", seqs)  # noqa: F841 (replacement scan)
            cur.execute(
                f"INSERT INTO import_rollups SELECT seq, {', '.join(ROLLUP_COLUMNS)} FROM with_seq"
            )
        cur.executemany(
            "INSERT INTO import_days VALUES (?, ?, ?, ?, ?)",
            [(seq, site_id, d, n, d in rolled_days) for d, n in sorted(day_events.items())],
        )
        if rolled_list:
            _merge_rollups(cur, site_id, seq, rolled_list, 1)
            cur.executemany(
                "INSERT INTO rollup_days VALUES (?, ?, ?, now()::TIMESTAMP, true)"
                " ON CONFLICT DO UPDATE SET events = events + excluded.events, pruned = true",
                [(site_id, d, day_events[d]) for d in rolled_list],
            )
        cur.execute(
            "INSERT INTO imports VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
            [seq, site_id, source, content_hash],
        )


def delete_import(store: Store, site_id: str, seq: int) -> dict[str, int]:
    """Remove everything import seq added to the site, in one transaction: its raw events,
    and its rollup rows from the days that are rollups only now (pruned since, maybe);
    the other days' rollups are dropped, to be rebuilt from what raw events remain.
    Returns {"events": raw events deleted, "days": days touched}."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.delete_import(ch, site_id, seq)
    store = _duckdb(store)
    lo, hi = session_range(seq)
    days = [
        r[0]
        for r in store.query(
            "SELECT day FROM import_days WHERE seq = ? AND site_id = ? ORDER BY day",
            [seq, site_id],
        )
    ]
    with store._transaction(site_id) as cur:
        cur.execute(
            "DELETE FROM events WHERE site_id = ? AND session_id BETWEEN ? AND ?",
            [site_id, lo, hi],
        )
        deleted = cur.fetchall()
        pruned = [
            r[0]
            for r in cur.execute(
                "SELECT day FROM rollup_days WHERE site_id = ? AND pruned"
                " AND day IN (SELECT unnest(?::DATE[])) ORDER BY day",
                [site_id, days],
            ).fetchall()
        ]
        if pruned:
            _merge_rollups(cur, site_id, seq, pruned, -1)
            cur.execute(
                "UPDATE rollup_days SET events = rollup_days.events - i.events FROM import_days i"
                " WHERE i.seq = ? AND i.site_id = rollup_days.site_id AND i.day = rollup_days.day"
                " AND rollup_days.site_id = ? AND rollup_days.pruned",
                [seq, site_id],
            )
            cur.execute(
                "DELETE FROM rollup_days WHERE site_id = ? AND pruned AND events <= 0",
                [site_id],
            )
        unpruned = sorted(set(days) - set(pruned))
        if unpruned:
            _drop_rollups(cur, site_id, unpruned)
        cur.execute("DELETE FROM imported_stats WHERE seq = ? AND site_id = ?", [seq, site_id])
        aggregates = cur.fetchall()
        for table in ("import_rollups", "import_days", "imports"):
            cur.execute(f"DELETE FROM {table} WHERE seq = ? AND site_id = ?", [seq, site_id])
    removed = {"events": int(deleted[0][0]) if deleted else 0, "days": len(days)}
    if aggregates and aggregates[0][0]:
        removed["imported_rows"] = int(aggregates[0][0])
    return removed


def import_days_of(store: Store, site_id: str, seq: int) -> list[date]:
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.import_days_of(ch, site_id, seq)
    rows = store.query(
        "SELECT day FROM import_days WHERE seq = ? AND site_id = ? ORDER BY day", [seq, site_id]
    )
    return [r[0] for r in rows]


# imported_stats' columns (migration events/007), in order.
IMPORTED_COLUMNS = (
    "seq", "site_id", "day", "kind", "source", "referrer", "channel", "utm_source",
    "utm_medium", "utm_campaign", "utm_content", "utm_term", "hostname", "pathname",
    "entry_page", "exit_page", "name", "props", "country", "region", "city", "device",
    "browser", "browser_version", "os", "os_version", "visitors", "visits", "pageviews",
    "events", "bounces", "duration", "scroll_sum", "scroll_count", "engaged_ms",
    "engaged_visitors",
)  # fmt: skip


def apply_imported_stats(
    store: Store, *, seq: int, site_id: str, source: str, content_hash: str, rows: pa.Table
) -> None:
    """Write an aggregate import (imported_stats rows, IMPORTED_COLUMNS) and its record in
    one transaction; the site's own events and rollups are untouched."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        clickhouse.apply_imported_stats(
            ch, seq=seq, site_id=site_id, source=source, content_hash=content_hash, rows=rows
        )
        return
    store = _duckdb(store)
    with store._transaction() as cur:
        if cur.execute(
            "SELECT count(*) FROM imports WHERE site_id = ? AND content_hash = ?",
            [site_id, content_hash],
        ).fetchall() != [(0,)]:
            raise Conflict("this export is already imported into the site")
        if rows.num_rows:
            cur.from_arrow(rows).insert_into("imported_stats")
        cur.execute(
            "INSERT INTO imports VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
            [seq, site_id, source, content_hash],
        )


def delete_site_imports(store: Store, site_id: str) -> None:
    """Everything imports stored for a site (a site deletion): its imported aggregates, the
    imports' own rollup rows and records. Its imported raw events and merged rollups are
    the site's events and rollups, which the deletion removes with the rest."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        clickhouse.delete_site_imports(ch, site_id)
        return
    store = _duckdb(store)
    with store._transaction(site_id) as cur:
        for table in ("imported_stats", "import_rollups", "import_days", "imports"):
            cur.execute(f"DELETE FROM {table} WHERE site_id = ?", [site_id])


def import_inventory(store: Store, site_id: str, seq: int) -> dict[str, Any]:
    """What import seq holds in the site now (what deleting it removes): raw events, days
    (and how many of them it added to rollup-only days), imported aggregate rows."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.import_inventory(ch, site_id, seq)
    lo, hi = session_range(seq)
    events = store.query(
        "SELECT count(*) FROM events WHERE site_id = ? AND session_id BETWEEN ? AND ?",
        [site_id, lo, hi],
    )[0][0]
    days = store.query(
        "SELECT count(*), count(*) FILTER (WHERE rolled), min(day), max(day), sum(events)"
        " FROM import_days WHERE seq = ? AND site_id = ?",
        [seq, site_id],
    )[0]
    stats = store.query(
        "SELECT count(*), count(DISTINCT day), min(day), max(day) FROM imported_stats"
        " WHERE seq = ? AND site_id = ?",
        [seq, site_id],
    )[0]
    return inventory(int(events), days, stats)


def recover(store: Store) -> list[tuple[str, int, str]]:
    """Settle imports and deletes a stop cut short: on DuckDB there are none (each was one
    transaction); on ClickHouse, clickhouse.recover()."""
    if ch := _on_clickhouse(store):
        from app.storage.clickhouse import imports as clickhouse

        return clickhouse.recover(ch)
    return []
