"""Imports on ClickHouse (issue #24): what app/storage/imports.py does in one DuckDB
transaction, as steps that are each safe to repeat, with a row in `import_steps`
(schema.sql) around them, since ClickHouse has no transaction to span them.

Writing an import: (1) the import_steps row (op 'import', the build its rollup merge
uses); (2) its days and its own rollup rows; (3) its raw events, copied from the scratch
DuckDB file in batches, each insert deduplicated by its token; (4) the rollups of its raw
days dropped (rebuilt from raw events); (5) its rollup rows added to the days that are
rollups only, as one rollup build of those days; (6) its `imports` row; (7) the
import_steps row deleted. recover() (at the server's start) rolls back one cut short:
the days whose current build is the recorded one get the import's rows subtracted, and
everything tagged with its seq goes.

Deleting an import takes the same steps backwards and is finished, not undone, when cut
short: a rollup-only day whose current build is the delete's recorded one is done."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from app.errors import Conflict
from app.storage.clickhouse.redate import RedatedStore, _add
from app.storage.import_ids import inventory, session_range
from app.storage.rollups import ROLLUP_COLUMNS, rollup_table

# The raw events copied from an import's scratch file per insert.
COPY_BATCH = 100_000
_COMPONENTS = ROLLUP_COLUMNS[4:]
_EVENTS = ROLLUP_COLUMNS.index("events")
_ENGAGED = ROLLUP_COLUMNS.index("engaged_ms")
_STEPS = pa.schema(
    [
        ("site_id", pa.string()),
        ("seq", pa.int32()),
        ("op", pa.string()),
        ("build", pa.uint64()),
        ("version", pa.uint64()),
        ("deleted", pa.uint8()),
    ]
)
_DAYS = pa.schema(
    [
        ("seq", pa.int32()),
        ("site_id", pa.string()),
        ("day", pa.date32()),
        ("events", pa.int64()),
        ("rolled", pa.bool_()),
    ]
)
_IMPORTS = pa.schema(
    [
        ("seq", pa.int32()),
        ("site_id", pa.string()),
        ("source", pa.string()),
        ("content_hash", pa.string()),
        ("created_at", pa.timestamp("us")),
    ]
)
_SITE_SEQ = "site_id = {p0:String} AND seq = {p1:Int32}"


class ImportStore(RedatedStore, Protocol):
    """What imports use of ClickHouseEventStore (app/storage/clickhouse/store.py): what
    re-dating uses, and the copy of raw events from another store."""

    def append_table(self, events: pa.Table, batch_id: str) -> None: ...


def imported_hash(store: ImportStore, site_id: str, content_hash: str) -> int | None:
    """The seq of a whole import of these same bytes into the site, if one is stored."""
    rows = store.query(
        "SELECT seq FROM imports WHERE site_id = {p0:String} AND content_hash = {p1:String}",
        [site_id, content_hash],
    )
    return int(rows[0][0]) if rows else None


def native_days(store: ImportStore, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last holding data not from an import: live raw events, or
    a pruned day's rollup counting more events than the imports added to it."""
    span = [site_id, first, last]
    days = "site_id = {p0:String} AND day BETWEEN {p1:Date} AND {p2:Date}"
    found = {
        r[0]
        for r in store.query(
            f"SELECT DISTINCT day FROM events WHERE {days} AND session_id >= 0", span
        )
    }
    imported = dict(
        store.query(f"SELECT day, sum(events) FROM import_days WHERE {days} GROUP BY day", span)
    )
    for day, events in store.query(
        f"SELECT day, events FROM rollup_days FINAL WHERE {days} AND pruned", span
    ):
        if events > int(imported.get(day) or 0):
            found.add(day)
    return found


def held_days(store: ImportStore, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last that hold raw events (native or imported) or rollups."""
    span = [site_id, first, last]
    days = "site_id = {p0:String} AND day BETWEEN {p1:Date} AND {p2:Date}"
    return {
        r[0]
        for table in ("events", "rollup_days FINAL")
        for r in store.query(f"SELECT DISTINCT day FROM {table} WHERE {days}", span)
    }


def pruned_days(store: ImportStore, site_id: str, first: date, last: date) -> set[date]:
    """The site's days first..last whose raw events are gone (only rollups remain)."""
    rows = store.query(
        "SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String} AND pruned"
        " AND day BETWEEN {p1:Date} AND {p2:Date}",
        [site_id, first, last],
    )
    return {r[0] for r in rows}


def import_days_of(store: ImportStore, site_id: str, seq: int) -> list[date]:
    rows = store.query(
        f"SELECT day FROM import_days WHERE {_SITE_SEQ} ORDER BY day", [site_id, seq]
    )
    return [r[0] for r in rows]


def _table(rows: Iterable[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(schema.names, row, strict=True)) for row in rows], schema=schema
    )


def _begin(store: ImportStore, site_id: str, seq: int, op: str) -> int:
    """The import_steps row of this op (the build its rollup changes use)."""
    build = store._next_build()
    row = [(site_id, seq, op, build, build, 0)]
    store._insert("import_steps", _table(row, _STEPS), f"{op}:{build}")
    return build


def _builds(
    store: ImportStore, site_id: str, days: Sequence[date]
) -> dict[date, tuple[int, int, bool]]:
    """Each of these days' current rollup: (build, events, pruned)."""
    rows = store.query(
        "SELECT day, build, events, pruned FROM rollup_days FINAL WHERE site_id = {p0:String}"
        " AND has({p1:Array(Date)}, day)",
        [site_id, list(days)],
    )
    return {r[0]: (int(r[1]), int(r[2]), bool(r[3])) for r in rows}


def _merge(
    store: ImportStore, site_id: str, seq: int, days: list[date], sign: int, build: int
) -> None:
    """Add (sign 1) or subtract (sign -1) import seq's rollup rows on these days to or from
    the site's, and its events to or from the days' counts, as one rollup build of those
    days (`build`); a row left with no events and no engagement goes (as the builder writes
    none), and so does a day left with no events."""
    if not days:
        return
    bound = [site_id, days]
    current = store.query(
        f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_stats"
        " WHERE site_id = {p0:String} AND has({p1:Array(Date)}, day)",
        bound,
    )
    own = store.query(
        f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM import_rollups"
        " WHERE site_id = {p0:String} AND has({p1:Array(Date)}, day) AND seq = {p2:Int32}",
        [*bound, seq],
    )
    summed: dict[tuple[Any, ...], list[Any]] = {}
    for row, factor in [*((r, 1) for r in current), *((r, sign) for r in own)]:
        key = tuple(row[:4])
        values = [v if factor == 1 or v is None else -v for v in row[4:]]
        if key in summed:
            values = [_add(a, b) for a, b in zip(summed[key], values, strict=True)]
        summed[key] = values
    rows = [
        (*key, *values)
        for key, values in summed.items()
        if values[_EVENTS - 4] or values[_ENGAGED - 4]
    ]
    states = _builds(store, site_id, days)
    added = dict(
        store.query(
            "SELECT day, events FROM import_days WHERE site_id = {p0:String}"
            " AND has({p1:Array(Date)}, day) AND seq = {p2:Int32}",
            [*bound, seq],
        )
    )
    counts = [(d, (states[d][1] if d in states else 0) + sign * int(added.get(d, 0))) for d in days]
    kept = [(d, n) for d, n in counts if n > 0]
    store.replace_rollups(site_id, days, rows, kept, pruned=days, build=build)


def _drop_rollups(store: ImportStore, site_id: str, days: Sequence[date]) -> None:
    """Forget the (unpruned) rollups of these days: answers read their raw events until
    the rollups are built again."""
    if days:
        for table in ("rollup_days", "daily_rollups"):
            store.execute(
                f"DELETE FROM {table} WHERE site_id = {{p0:String}}"
                " AND has({p1:Array(Date)}, day)",
                [site_id, list(days)],
            )


def _copy_events(
    store: ImportStore, site_id: str, seq: int, scratch: Path, rolled: list[date]
) -> None:
    """The scratch file's events of the days that keep raw events, in batches (each
    insert's token is its position: a repeat inserts nothing twice)."""
    con = duckdb.connect(str(scratch), read_only=True)
    try:
        reader = con.sql(
            "SELECT * FROM events WHERE NOT list_contains(?::DATE[], day)", params=[rolled]
        ).to_arrow_reader(COPY_BATCH)
        for n, batch in enumerate(reader):
            store.append_table(pa.Table.from_batches([batch]), f"import:{site_id}:{seq}:{n}")
    finally:
        con.close()


def apply_import(
    store: ImportStore,
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
    """Write one import (app/storage/imports.py apply_import), in the steps above."""
    if imported_hash(store, site_id, content_hash) is not None:
        raise Conflict("this export is already imported into the site")
    raw_days = sorted(d for d in day_events if d not in rolled_days)
    rolled_list = sorted(rolled_days)
    build = _begin(store, site_id, seq, "import")
    token = f"import:{site_id}:{seq}"
    days = [(seq, site_id, d, n, d in rolled_days) for d, n in sorted(day_events.items())]
    store._insert("import_days", _table(days, _DAYS), token)
    if rolled:
        table = rollup_table(rolled)
        with_seq = table.add_column(0, "seq", pa.array([seq] * table.num_rows, pa.int32()))
        store._insert("import_rollups", with_seq, token)
    if raw_from is not None:
        _copy_events(store, site_id, seq, raw_from, rolled_list)
    _drop_rollups(store, site_id, raw_days)
    _merge(store, site_id, seq, rolled_list, 1, build)
    _record(store, seq, site_id, source, content_hash)
    _end(store, site_id, seq, "import", build)


def _record(store: ImportStore, seq: int, site_id: str, source: str, content_hash: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    row = [(seq, site_id, source, content_hash, now)]
    store._insert("imports", _table(row, _IMPORTS), f"imports:{site_id}:{seq}")


def _end(store: ImportStore, site_id: str, seq: int, op: str, build: int) -> None:
    """The import_steps row of this op replaced by a deleted one."""
    row = [(site_id, seq, op, build, store._next_build(), 1)]
    store._insert("import_steps", _table(row, _STEPS), f"{op}:{build}:end")


def _forget(store: ImportStore, site_id: str, seq: int) -> int:
    """Delete every row tagged with import seq (its raw events included); returns how
    many imported aggregate rows went."""
    lo, hi = session_range(seq)
    store.execute(
        "DELETE FROM events WHERE site_id = {p0:String} AND session_id BETWEEN {p1:Int64}"
        " AND {p2:Int64}",
        [site_id, lo, hi],
    )
    aggregates = store._count("imported_stats", _SITE_SEQ, [site_id, seq])
    for table in ("imported_stats", "import_rollups", "import_days", "imports"):
        if store._count(table, _SITE_SEQ, [site_id, seq]):
            store.execute(f"DELETE FROM {table} WHERE {_SITE_SEQ}", [site_id, seq])
    return aggregates


def delete_import(store: ImportStore, site_id: str, seq: int) -> dict[str, int]:
    """Remove everything import seq added to the site (app/storage/imports.py
    delete_import); a delete cut short is finished by the next run or recover()."""
    steps = store.query(
        f"SELECT build FROM import_steps FINAL WHERE {_SITE_SEQ} AND op = 'delete'",
        [site_id, seq],
    )
    build = int(steps[0][0]) if steps else _begin(store, site_id, seq, "delete")
    return _delete(store, site_id, seq, build)


def _delete(store: ImportStore, site_id: str, seq: int, build: int) -> dict[str, int]:
    lo, hi = session_range(seq)
    days = import_days_of(store, site_id, seq)
    states = _builds(store, site_id, days)
    # Rollup-only days the import is in (merged in, or pruned since), not yet subtracted.
    pruned = sorted(d for d, (b, _, p) in states.items() if p and b != build)
    _merge(store, site_id, seq, pruned, -1, build)
    events = store._count(
        "events",
        "site_id = {p0:String} AND session_id BETWEEN {p1:Int64} AND {p2:Int64}",
        [site_id, lo, hi],
    )
    _drop_rollups(store, site_id, [d for d in days if d in states and not states[d][2]])
    aggregates = _forget(store, site_id, seq)
    _end(store, site_id, seq, "delete", build)
    removed = {"events": events, "days": len(days)}
    if aggregates:
        removed["imported_rows"] = aggregates
    return removed


def recover(store: ImportStore) -> list[tuple[str, int, str]]:
    """Settle the imports and deletes a stop cut short: an import is rolled back (whole or
    not: its job never finished, so it is reported as adding nothing), a delete finished.
    Returns (site id, seq, what was done) of each."""
    done = []
    for site_id, seq, op, build in store.query(
        "SELECT site_id, seq, op, build FROM import_steps FINAL ORDER BY site_id, seq"
    ):
        seq, build = int(seq), int(build)
        if op == "delete":
            _delete(store, site_id, seq, build)
            done.append((site_id, seq, "deleted"))
            continue
        days = import_days_of(store, site_id, seq)
        merged = [d for d, (b, _, _) in sorted(_builds(store, site_id, days).items()) if b == build]
        _merge(store, site_id, seq, merged, -1, store._next_build())
        _forget(store, site_id, seq)
        _end(store, site_id, seq, "import", build)
        done.append((site_id, seq, "rolled back"))
    return done


def pending(store: ImportStore) -> list[str]:
    """The imports and deletes cut short, as `avocet doctor` shows them."""
    rows = store.query("SELECT site_id, seq, op FROM import_steps FINAL ORDER BY site_id, seq")
    return [f"{op} {seq} of site {site}" for site, seq, op in rows]


def apply_imported_stats(
    store: ImportStore, *, seq: int, site_id: str, source: str, content_hash: str, rows: pa.Table
) -> None:
    """Write an aggregate import (imported_stats rows) and its record; cut short, it is
    rolled back by recover()."""
    if imported_hash(store, site_id, content_hash) is not None:
        raise Conflict("this export is already imported into the site")
    build = _begin(store, site_id, seq, "import")
    if rows.num_rows:
        store._insert("imported_stats", rows, f"import:{site_id}:{seq}")
    _record(store, seq, site_id, source, content_hash)
    _end(store, site_id, seq, "import", build)


def delete_site_imports(store: ImportStore, site_id: str) -> None:
    """Everything imports stored for a site (a site deletion); its imported raw events
    and merged rollups are the site's, which the deletion removes with the rest."""
    for table in ("imported_stats", "import_rollups", "import_days", "imports", "import_steps"):
        if store._count(table, "site_id = {p0:String}", [site_id]):
            store.execute(f"DELETE FROM {table} WHERE site_id = {{p0:String}}", [site_id])


def import_inventory(store: ImportStore, site_id: str, seq: int) -> dict[str, Any]:
    """What import seq holds in the site now (what deleting it removes)."""
    lo, hi = session_range(seq)
    events = store._count(
        "events",
        "site_id = {p0:String} AND session_id BETWEEN {p1:Int64} AND {p2:Int64}",
        [site_id, lo, hi],
    )
    days = store.query(
        "SELECT count(), countIf(rolled), min(day), max(day), sum(events) FROM import_days"
        f" WHERE {_SITE_SEQ}",
        [site_id, seq],
    )[0]
    stats = store.query(
        "SELECT count(), count(DISTINCT day), min(day), max(day) FROM imported_stats"
        f" WHERE {_SITE_SEQ}",
        [site_id, seq],
    )[0]
    return inventory(events, days, stats)
