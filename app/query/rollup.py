"""Daily rollups: build them from raw events (answering from them: rollup_answer.py).

Rows are additive components per site, site-local day, property and value, computed by the
same compiler as every raw answer. A visitor and a session never span two site-days, so
the sum of daily rows equals the raw answer over the same days, exactly."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from app.query.compile_terms import Sql, local_ts
from app.query.model import COLUMNS, OUTBOUND, RAW_ONLY_PROPERTIES, Filter, Query
from app.query.periods import day_range
from app.query.run import dialect_of, run_query_sync
from app.storage.rollups import ROLLUP_COLUMNS
from app.storage.store import Store

TOTALS = ""  # the property of a day's totals row
# Every breakdown property but prop:<key> (keys are open-ended) and the raw-only ones.
ROLLUP_PROPERTIES = tuple(p for p in COLUMNS if p not in RAW_ONLY_PROPERTIES)
# The stored components: daily_stats' columns after (site_id, day, property, value).
COMPONENTS = ROLLUP_COLUMNS[4:]


def implicit_filters(prop: str) -> tuple[Filter, ...]:
    # exit_link rows count outbound clicks: the breakdown's own filter, not the caller's.
    return (Filter("is", "event", (OUTBOUND,)),) if prop == "exit_link" else ()


def component_query(
    site_id: str,
    zone: ZoneInfo,
    first: date,
    last: date,
    prop: str,
    components: tuple[str, ...] = COMPONENTS,
    by_day: bool = True,
) -> Query:
    """The components per day (or, by_day=False, over the days first..last) and value, in
    the site's zone (so days come from the stored `day` column)."""
    dims = (*((prop,) if prop else ()), *(("time:day",) if by_day else ()))
    return Query(
        site_id=site_id,
        period=day_range("custom", zone, first, last),
        metrics=components,
        dimensions=dims,
        filters=implicit_filters(prop),
        site_timezone=zone.key,
    )


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days: [(first, last), ...]."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def days_to_build(store: Store, site_id: str, today: date) -> list[date]:
    """Finished days with events that have no rollup, or whose event count changed."""
    counts = store.day_counts(site_id, None, today - timedelta(days=1))
    built = store.rollup_day_states(site_id)
    return sorted(
        d for d, n in counts.items() if d not in built or (built[d][0] != n and not built[d][1])
    )


def component_rows(
    store: Store,
    site_id: str,
    zone: ZoneInfo,
    days: Iterable[date],
    *,
    stored_days: bool = True,
) -> list[tuple[Any, ...]]:
    """Rollup rows (ROLLUP_COLUMNS) of these site-days, computed from raw events: per day,
    property and value. stored_days=False: the days of ts in `zone`, not the stored `day`
    column (which is in another zone while a site's events are re-dated)."""
    wanted = set(days)
    rows: list[tuple[Any, ...]] = []
    for first, last in runs(wanted):
        for prop in (TOTALS, *ROLLUP_PROPERTIES):
            q = component_query(site_id, zone, first, last, prop)
            if not stored_days:
                q = msgspec.structs.replace(q, site_timezone=None)
            for row in run_query_sync(store, q).rows:
                day = row["time"].date()
                if day in wanted and (row["events"] or row["engaged_ms"]):
                    value = row.get(prop) if prop else None
                    rows.append((site_id, day, prop, value, *(row[c] for c in COMPONENTS)))
    return rows


def build_rollups(store: Store, site_id: str, timezone: str, days: list[date]) -> int:
    """Rebuild the rollups of these site-days from raw events; returns rows written."""
    rows = component_rows(store, site_id, ZoneInfo(timezone), days)
    wanted = set(days)
    counts = store.day_counts(site_id, min(days), max(days)) if days else {}
    store.replace_rollups(site_id, days, rows, [(d, n) for d, n in counts.items() if d in wanted])
    return len(rows)


def with_site_timezone(q: Query, timezone: str | None) -> Query:
    return msgspec.structs.replace(q, site_timezone=timezone)


def redate(store: Store, site_id: str, timezone: str) -> int:
    """Put a site's raw events on their local days in `timezone` (after the site's timezone
    changed) and drop the rollups that will be rebuilt in it; returns how many events
    changed day. The same local day as the ingest pipeline gives (the zone's offsets from
    zoneinfo, as the query compiler applies them), whatever the engine's own tz data says.

    A pruned day keeps its rollup (its raw events are gone, it can't be rebuilt). Events
    that move onto one (a zone behind the old one moves the first raw day's early hours
    onto the last pruned day) are added to its rollup and leave the raw table: they come
    from the old zone's next day, whose salt differs, so every count just adds up.

    On ClickHouse a re-dating cut short (a crash) is finished before another begins, in
    the zone it was for (Store.pending_redate)."""
    pending = store.pending_redate(site_id)
    if pending is not None and pending != timezone:
        redate(store, site_id, pending)
    dialect = dialect_of(store)
    span = Sql(dialect)
    first, last = store.query(
        f"SELECT min(ts), max(ts) FROM events WHERE site_id = {span.bind(site_id)}", span.params
    )[0]
    if first is None:  # no raw events: only the rollups to drop
        return store.redate_site(site_id, "day", [], [], zone=timezone)
    zone = ZoneInfo(timezone)
    sql = Sql(dialect, first=1)  # on ClickHouse, p0 is the site id (Store.redate_site)
    local = local_ts(sql, zone, first, last + timedelta(microseconds=1))
    # The days raw events can move onto (first's UTC day minus one) up to any later day.
    pruned = store.pruned_days(site_id, first.date() - timedelta(days=1), date(2149, 6, 6))
    arrivals = component_rows(store, site_id, zone, pruned, stored_days=False)
    return store.redate_site(site_id, dialect.date(local), sql.params, arrivals, zone=timezone)


def prune(store: Store, site_id: str, before: date, dry_run: bool = False) -> int:
    """Delete raw events of the site's days before `before` that are rolled up (never one
    that isn't); returns how many events went (or would go)."""
    count = store.prunable(site_id, before)
    if not dry_run and count:
        store.delete_rolled_up_raw(site_id, before)
    return count
