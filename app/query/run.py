"""Execute a compiled query on a DuckDB cursor off the event loop; shape rows for surfaces."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import msgspec

from app.errors import AppError
from app.query.compile import compile_query
from app.query.model import Query
from app.query.periods import Period, local_midnight_utc
from app.storage.events import EventStore

QUERY_TIMEOUT_S = 30.0


class QueryTimeout(AppError):
    status = 503
    code = "query_timeout"


class Result(msgspec.Struct, kw_only=True):
    """Rows as dicts: dimension values under their dimension names, metrics under theirs."""

    rows: list[dict[str, Any]]
    total_rows: int
    from_rollups: bool = False


def _execute(store: EventStore, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    cur = store.cursor()
    timer = threading.Timer(QUERY_TIMEOUT_S, cur.interrupt)
    timer.start()
    try:
        return cur.execute(sql, params).fetchall()
    except duckdb.InterruptException as exc:
        raise QueryTimeout(f"the query took longer than {QUERY_TIMEOUT_S:.0f} s") from exc
    finally:
        timer.cancel()
        cur.close()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def run_query_sync(store: EventStore, q: Query) -> Result:
    """Blocking: compile, execute, map key columns back to dimension names."""
    compiled = compile_query(q)
    raw = _execute(store, compiled.sql, compiled.params)
    names = [*q.properties, *(["time"] if q.interval else [])]
    rows = []
    total = 0
    for record in raw:
        keys, values, total = record[: len(names)], record[len(names) : -1], record[-1]
        row = dict(zip(names, keys, strict=True))
        row.update((m, _plain(v)) for m, v in zip(q.metrics, values, strict=True))
        rows.append(row)
    if not raw and q.offset and q.limit is not None:
        # A page past the end has no row to carry the count: ask for the first one.
        first = run_query_sync(store, msgspec.structs.replace(q, limit=1, offset=0))
        total = first.total_rows
    if q.interval:
        rows = zero_fill(q, rows)
    return Result(rows=rows, total_rows=int(total))


def bucket_starts(period: Period, interval: str) -> list[datetime]:
    """Every local bucket start (naive wall-clock) of the period, in order."""
    zone = ZoneInfo(period.timezone)
    if interval == "hour":
        # Every local hour the range touches. Stepping by 15 minutes (the finest UTC offset
        # granularity) also catches the last partial hour of a rolling range in +05:45.
        start = period.start.replace(tzinfo=UTC)
        steps = int((period.end - period.start).total_seconds() // 900)
        instants = [start + timedelta(minutes=15 * i) for i in range(steps)]
        instants.append(period.end.replace(tzinfo=UTC) - timedelta(microseconds=1))
        seen: list[datetime] = []
        for instant in instants:
            local = instant.astimezone(zone)
            label = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
            if not seen or seen[-1] != label:
                seen.append(label)
        return seen
    day = period.first_day
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    starts = []
    while day <= period.last_day:
        starts.append(datetime(day.year, day.month, day.day))
        day = _next(day, interval)
    return starts


def _next(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_label(local_start: datetime, zone: ZoneInfo) -> str:
    """A local bucket start as the UTC instant, ISO-8601 with milliseconds: ...T08:00:00.000Z."""
    if local_start.hour == 0 and local_start.minute == 0:
        utc = local_midnight_utc(local_start.date(), zone)
    else:
        utc = local_start.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def zero_fill(q: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every bucket of the period present, with zeros where nothing happened."""
    assert q.interval is not None
    if q.properties:  # a breakdown by property and time: no filling across properties
        return rows
    by_start = {row["time"]: row for row in rows}
    filled = []
    for start in bucket_starts(q.period, q.interval):
        row = by_start.get(start)
        filled.append(row if row is not None else {"time": start, **dict.fromkeys(q.metrics, 0)})
    return filled


def first_event_day(store: EventStore, site_id: str) -> date | None:
    """The site's first local day with data ("all" starts there)."""
    rows = store.query("SELECT min(day) FROM events WHERE site_id = ?", [site_id])
    return rows[0][0] if rows else None


def bot_hits(store: EventStore, site_id: str, first: date, last: date) -> int:
    """Bot hits dropped for the site on these local days (meta.filtered_bot_traffic)."""
    rows = store.query(
        "SELECT coalesce(sum(hits), 0) FROM bot_counts WHERE site_id = ? AND day BETWEEN ? AND ?",
        [site_id, first, last],
    )
    return int(rows[0][0])
