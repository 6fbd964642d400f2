"""`avocet migrate-storage --to clickhouse` (issue #24): a DuckDB data dir's events, rollups
and counters copied into a ClickHouse store, resumable.

Raw events go over one (site, month) at a time, each one insert with its own deduplication
token: a chunk is in ClickHouse whole or not at all. A chunk whose count ClickHouse already
holds is skipped, so a run stopped anywhere (Ctrl-C, a crash, a lost connection) continues
where it stopped; a chunk that holds another count (events ingested there meanwhile) stops
the run with the chunk named, nothing overwritten. Rollups and their days (with the pruned
flag: a pruned day's raw events are gone and it must never be rebuilt) replace the site's
rollups on ClickHouse as a whole; bot and exclusion counters are copied for sites that have
none there yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from app.storage.clickhouse.store import ClickHouseEventStore
from app.storage.events import COLUMNS, EVENT_SCHEMA, EventStore
from app.storage.rollups import ROLLUP_COLUMNS

Progress = Callable[[int, int], None]  # (events done, events in all)


class Migrated(NamedTuple):
    events: int  # raw events in the DuckDB store
    copied: int  # of them, copied by this run (the rest were there from an earlier one)
    chunks: int
    rollup_rows: int
    rolled_days: int
    counters: int
    imports: int = 0  # imports whose records (days, own rollups, aggregates) were copied


class MigrationConflict(Exception):
    """ClickHouse holds another number of events for a chunk than DuckDB."""


def migrate(
    duck: EventStore, ch: ClickHouseEventStore, progress: Progress | None = None
) -> Migrated:
    chunks = duck.query(
        "SELECT site_id, (year(ts) * 100 + month(ts))::INTEGER AS month, count(*)"
        " FROM events GROUP BY ALL ORDER BY ALL"
    )
    total = sum(int(n) for _, _, n in chunks)
    done = copied = 0
    for site_id, month, n in chunks:
        have = ch.query(
            "SELECT count() FROM events WHERE site_id = {p0:String} AND toYYYYMM(ts) = {p1:Int64}",
            [site_id, month],
        )[0][0]
        if have == 0:
            ch.append_table(_chunk(duck, site_id, month), f"migrate:{site_id}:{month}")
            copied += int(n)
        elif have != n:
            raise MigrationConflict(
                f"ClickHouse holds {have} events of site {site_id} in {month // 100}-"
                f"{month % 100:02d} where DuckDB has {n}: events were added there since"
                " (is a server running on it?); nothing was overwritten"
            )
        done += int(n)
        if progress:
            progress(done, total)
    rows, days = _copy_rollups(duck, ch)
    counters = _copy_counters(duck, ch)
    return Migrated(total, copied, len(chunks), rows, days, counters, _copy_imports(duck, ch))


def _chunk(duck: EventStore, site_id: str, month: int) -> pa.Table:
    with duck.reading() as cur:
        table = cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM events WHERE site_id = ?"
            " AND (year(ts) * 100 + month(ts)) = ?",
            [site_id, month],
        ).to_arrow_table()
    assert table is not None  # a SELECT always has a result
    return table.cast(EVENT_SCHEMA)


def _copy_rollups(duck: EventStore, ch: ClickHouseEventStore) -> tuple[int, int]:
    """Each site's rollup rows and rolled days, replacing what ClickHouse has of them."""
    rows_copied = days_copied = 0
    sites = [r[0] for r in duck.query("SELECT DISTINCT site_id FROM rollup_days ORDER BY 1")]
    for site_id in sites:
        days = duck.query(
            "SELECT day, events, pruned FROM rollup_days WHERE site_id = ? ORDER BY day",
            [site_id],
        )
        rows: list[tuple[Any, ...]] = duck.query(
            f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_stats WHERE site_id = ?", [site_id]
        )
        ch.replace_rollups(
            site_id,
            [d for d, _, _ in days],
            rows,
            [(d, int(n)) for d, n, _ in days],
            pruned={d for d, _, p in days if p},
        )
        rows_copied += len(rows)
        days_copied += len(days)
    return rows_copied, days_copied


def _copy_counters(duck: EventStore, ch: ClickHouseEventStore) -> int:
    """Bot and exclusion counters of the sites that have none on ClickHouse yet."""
    copied = 0
    for table, columns in (
        ("bot_counts", "site_id, day, hits"),
        ("excluded_counts", "site_id, day, reason, hits"),
    ):
        there = {r[0] for r in ch.query(f"SELECT DISTINCT site_id FROM {table}")}
        with duck.reading() as cur:
            found = cur.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").to_arrow_table()
        assert found is not None  # a SELECT always has a result
        data = found.filter(
            pc.invert(pc.is_in(found["site_id"], pa.array(list(there), pa.string())))
        )
        if data.num_rows:
            ch.insert_table(table, data, f"migrate:{table}")
            copied += data.num_rows
    return copied


# The tables that record imports (their raw events are events), in the order they are
# copied: `imports` last, as its row says the import is whole.
_IMPORT_TABLES = ("import_days", "import_rollups", "imported_stats", "imports")


def _copy_imports(duck: EventStore, ch: ClickHouseEventStore) -> int:
    """The records of the imports ClickHouse doesn't have yet, an import at a time (each
    insert deduplicated by its token: a run stopped half-way repeats nothing)."""
    there = {(str(s), int(q)) for s, q in ch.query("SELECT site_id, seq FROM imports")}
    copied = 0
    for site_id, seq in duck.query("SELECT site_id, seq FROM imports ORDER BY ALL"):
        if (site_id, int(seq)) in there:
            continue
        for table in _IMPORT_TABLES:
            with duck.reading() as cur:
                found = cur.execute(
                    f"SELECT * FROM {table} WHERE site_id = ? AND seq = ?", [site_id, seq]
                ).to_arrow_table()
            assert found is not None  # a SELECT always has a result
            if found.num_rows:
                ch._insert(table, found, f"migrate:{table}:{site_id}:{seq}")
        copied += 1
    return copied


def copy_to_duckdb(
    ch: ClickHouseEventStore, dest_file: Path, progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """A ClickHouse store's raw events, current rollups, rolled days and counters written
    into a new DuckDB events file (a backup's events.duckdb: `avocet restore` takes it, and
    migrate() puts it back on ClickHouse). Events go one (site, month) at a time, each read
    from the parts its query began with; rows per table returned."""
    fresh = EventStore(dest_file)  # the schema exactly as a server makes it
    fresh.close()
    con = duckdb.connect(str(dest_file))
    counts: dict[str, int] = {}
    try:
        chunks = ch.query(
            "SELECT site_id, toYYYYMM(ts), count() FROM events GROUP BY 1, 2 ORDER BY 1, 2"
        )
        counts["events"] = 0
        for site_id, month, _ in chunks:
            if progress:
                progress(f"copying events of {site_id} {month}...")
            chunk = ch.arrow(
                f"SELECT {', '.join(COLUMNS)} FROM events WHERE site_id = {{p0:String}}"
                " AND toYYYYMM(ts) = {p1:UInt32}",
                [site_id, month],
            ).cast(EVENT_SCHEMA)
            counts["events"] += _insert(con, "events", chunk)
        for table, select in _DUCKDB_TABLES.items():
            if progress:
                progress(f"copying {table}...")
            found = _naive_times(ch.arrow(select))
            if table == "imported_stats":
                found = _null_empty_props(found)
            counts[table] = _insert(con, table, found)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return counts


# DuckDB's rollup and counter tables, read from ClickHouse's: each day's current build
# (its build number is ClickHouse's only), counters summed.
_DUCKDB_TABLES = {
    "daily_rollups": "SELECT * EXCEPT (build) FROM daily_rollups_current",
    "rollup_days": "SELECT site_id, day, events, built_at, pruned FROM rollup_days FINAL",
    "bot_counts": "SELECT site_id, day, sum(hits) AS hits FROM bot_counts GROUP BY 1, 2",
    "excluded_counts": "SELECT site_id, day, reason, sum(hits) AS hits FROM excluded_counts"
    " GROUP BY 1, 2, 3",
    **{table: f"SELECT * FROM {table}" for table in _IMPORT_TABLES},
}


def _naive_times(table: pa.Table) -> pa.Table:
    """Times as DuckDB's TIMESTAMP columns hold them: UTC, without the zone."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table[field.name].cast(pa.timestamp("us")))
    return table


def _null_empty_props(table: pa.Table) -> pa.Table:
    """props NULL where ClickHouse's (never NULL) map is empty, as DuckDB stores a row
    without them (a table of daily aggregates: small)."""
    i = table.schema.get_field_index("props")
    props = [v or None for v in table["props"].to_pylist()]
    return table.set_column(i, "props", pa.array(props, table.schema.field(i).type))


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> int:
    con.register("avocet_chunk", data)
    try:
        columns = ", ".join(f'"{c}"' for c in data.column_names)
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM avocet_chunk")
    finally:
        con.unregister("avocet_chunk")
    return int(data.num_rows)
