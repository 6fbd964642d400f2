"""Re-dating a site's events on ClickHouse after its timezone changed (issue #24), the
ClickHouseEventStore's redate_site and pending_redate (part of that store, kept apart).

`day` is in the sort key, so rows can't be updated: the moved rows are copied with their
new day into a stage table shaped as events, the old rows deleted, and the stage's parts
moved into events partition by partition (MOVE PARTITION: each part is in one table or the
other, never both, so a repeated move moves only what is left). The order makes every step
safe to repeat, and a `redates` row (schema.sql) lets the next run finish one cut short."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import pyarrow as pa

from app.storage.events import COLUMNS
from app.storage.rollups import ROLLUP_COLUMNS


class RedatedStore(Protocol):
    """What re-dating uses of ClickHouseEventStore (app/storage/clickhouse/store.py)."""

    def query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> None: ...

    def rollup_day_states(self, site_id: str) -> dict[date, tuple[int, bool]]: ...

    def replace_rollups(
        self,
        site_id: str,
        days: Sequence[object],
        rows: Sequence[tuple[Any, ...]],
        counts: Sequence[tuple[object, int]],
        pruned: Collection[object] = (),
        build: int | None = None,
    ) -> None: ...

    def quorum_clause(self) -> str: ...

    def _insert(self, table: str, data: pa.Table, token: str) -> None: ...

    def _count(self, table: str, where: str, params: Sequence[object]) -> int: ...

    def _next_build(self) -> int: ...


_REDATES = pa.schema(
    [
        ("site_id", pa.string()),
        ("zone", pa.string()),
        ("build", pa.uint64()),
        ("until", pa.timestamp("us")),
    ]
)


def _add(a: Any, b: Any) -> Any:
    """Two rollup components summed as SQL's sum() sums them (NULL only where both are)."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, float) or isinstance(b, float):  # a Float64 column, a Decimal sum
        return float(a) + float(b)
    return a + b


def _stage(site_id: str) -> str:
    return "redate_" + hashlib.sha1(site_id.encode()).hexdigest()[:16]


def pending_redate(store: RedatedStore, site_id: str) -> str | None:
    rows = store.query("SELECT zone FROM redates WHERE site_id = {p0:String}", [site_id])
    return str(rows[0][0]) if rows else None


def redate_site(
    store: RedatedStore,
    site_id: str,
    local_day: str,
    params: Sequence[object],
    arrivals: Sequence[tuple[Any, ...]] = (),
    zone: str = "",
) -> int:
    """Set the `day` of a site's raw events to `local_day` (a ClickHouse Date
    expression of ts; its parameters are p1, p2, ... in `params`, p0 is the site id),
    drop the rollups of days that have raw events (rebuilt in the new zone), and add
    `arrivals` to the pruned days events move onto (those events leave the raw table,
    as pruning would have done). Returns how many events changed day.

    Steps: (1) stage the moved rows (those onto pruned days excepted) and record the
    re-dating in `redates`; (2) merge the arrivals under the recorded build (skipped
    once that build is current: a repeat inserts nothing); (3) delete the old rows;
    (4) move the stage into events; (5) drop the rebuildable rollups; (6) forget the
    re-dating. Ingest goes on meanwhile: rows stamped after the newest one at step 1
    are never touched (they already have the new zone's day)."""
    stage = _stage(site_id)
    bound: dict[str, object] = {"p0": site_id}
    bound |= {f"p{i}": value for i, value in enumerate(params, 1)}
    recorded = store.query(
        "SELECT zone, build, until FROM redates WHERE site_id = {p0:String}", [site_id]
    )
    if recorded and recorded[0][0] != zone:
        raise RuntimeError(f"a re-dating to {recorded[0][0]} is to be finished first")
    moved = 0
    if recorded:
        build, until = int(recorded[0][1]), recorded[0][2]
    else:
        build, until = store._next_build(), _newest(store, site_id)
    if until is not None:
        bound |= {"until": until, "onto": sorted({row[1] for row in arrivals})}
        moving = (
            "site_id = {p0:String} AND ts <= {until:DateTime64(6, 'UTC')}"
            f" AND day != {local_day}"
        )
        if not recorded:
            _stage_moved(store, stage, local_day, moving, bound)
            marker = pa.Table.from_pylist(
                [dict(zip(_REDATES.names, (site_id, zone, build, until), strict=True))],
                schema=_REDATES,
            )
            store._insert("redates", marker, f"redate:{site_id}:{build}")
        moved = _count_bound(store, "events", moving, bound)
        if arrivals and not store._count(
            "rollup_days", "site_id = {p0:String} AND build = {p1:UInt64}", [site_id, build]
        ):
            _merge_arrivals(store, site_id, local_day, moving, bound, arrivals, build)
        if moved:
            store.execute(f"DELETE FROM events WHERE {moving}", bound)
        _move_stage(store, stage)
    rebuilt = store.query(
        "SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String} AND NOT pruned",
        [site_id],
    )
    store.replace_rollups(site_id, [day for (day,) in rebuilt], [], [])
    store.execute("DELETE FROM redates WHERE site_id = {p0:String}", {"p0": site_id})
    return moved


def _newest(store: RedatedStore, site_id: str) -> datetime | None:
    rows = store.query("SELECT max(ts) FROM events WHERE site_id = {p0:String}", [site_id])
    return rows[0][0] if rows else None


def _count_bound(store: RedatedStore, table: str, where: str, bound: Mapping[str, object]) -> int:
    rows = store.query(f"SELECT count() FROM {table} WHERE {where}", bound)
    return int(rows[0][0]) if rows else 0


def _stage_moved(
    store: RedatedStore,
    stage: str,
    local_day: str,
    moving: str,
    bound: Mapping[str, object],
) -> None:
    """Step 1: a fresh stage (a crash mid-way left at most a partial one, unrecorded)
    holding the moved rows with their new day, but those onto pruned days."""
    store.execute(f"DROP TABLE IF EXISTS {stage} SYNC")
    store.execute(f"CREATE TABLE {stage} AS events")
    columns = ", ".join(COLUMNS)
    selected = ", ".join(f"{local_day} AS day" if c == "day" else c for c in COLUMNS)
    # On a Replicated database the stage is replicated too (CREATE ... AS events), and
    # the copy waits for a quorum, as inserts do, before its parts move into events.
    store.execute(
        f"INSERT INTO {stage} ({columns}) SELECT {selected} FROM events WHERE {moving}"
        f" AND NOT has({{onto:Array(Date)}}, {local_day}){store.quorum_clause()}",
        bound,
    )


def _merge_arrivals(
    store: RedatedStore,
    site_id: str,
    local_day: str,
    moving: str,
    bound: Mapping[str, object],
    arrivals: Sequence[tuple[Any, ...]],
    build: int,
) -> None:
    """Step 2: the pruned days' rollup rows plus the arrivals, and their event counts
    plus the events that arrive, as one rollup build of those days (`build`: a repeat
    after a crash inserts nothing, by its deduplication token)."""
    days = sorted({row[1] for row in arrivals})
    summed: dict[tuple[Any, ...], list[Any]] = {}
    current = store.query(
        f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_stats"
        " WHERE site_id = {p0:String} AND has({p1:Array(Date)}, day)",
        [site_id, days],
    )
    for row in [*current, *arrivals]:
        key, values = tuple(row[:4]), list(row[4:])
        if key in summed:
            values = [_add(a, b) for a, b in zip(summed[key], values, strict=True)]
        summed[key] = values
    arriving = dict(
        store.query(
            f"SELECT {local_day} AS new_day, count() FROM events WHERE {moving}"
            f" AND has({{onto:Array(Date)}}, {local_day}) GROUP BY new_day",
            bound,
        )
    )
    states = store.rollup_day_states(site_id)
    counts = [(d, states[d][0] + int(arriving.get(d, 0))) for d in days]
    rows = [(*key, *values) for key, values in summed.items()]
    store.replace_rollups(site_id, days, rows, counts, pruned=days, build=build)


def _move_stage(store: RedatedStore, stage: str) -> None:
    """Step 4 (and dropping the stage): each partition's parts go over whole."""
    found = store.query(
        "SELECT DISTINCT partition_id FROM system.parts WHERE active"
        " AND database = currentDatabase() AND table = {p0:String}",
        [stage],
    )
    for (partition,) in found:
        store.execute(f"ALTER TABLE {stage} MOVE PARTITION ID '{partition}' TO TABLE events")
    store.execute(f"DROP TABLE IF EXISTS {stage} SYNC")
