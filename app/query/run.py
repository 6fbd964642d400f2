"""Execute a compiled query on a DuckDB cursor off the event loop; shape rows for surfaces."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

import duckdb
import msgspec

from app.errors import AppError, InvalidRequest
from app.query.compile import compile_query
from app.query.dialect import CLICKHOUSE, DUCKDB, Dialect
from app.query.model import FilterTree, Query, filter_leaves
from app.query.periods import Period, local_midnight_utc
from app.storage.events import EventStore
from app.storage.store import Store

QUERY_TIMEOUT_S = 30.0


class QueryTimeout(AppError):
    status = 503
    code = "query_timeout"


class Result(msgspec.Struct, kw_only=True):
    """Rows as dicts: dimension values under their dimension names, metrics under theirs."""

    rows: list[dict[str, Any]]
    total_rows: int
    from_rollups: bool = False
    # Bot hits dropped on the period's local days (meta.filtered_bot_traffic), when asked.
    bot_hits: int | None = None
    # When imported aggregates were asked for (Query.include_imports): whether the answer
    # includes them, and if not why (Plausible v2's meta.imports_skip_reason).
    imports_included: bool | None = None
    imports_skip_reason: str | None = None


class _Watchdog:
    """Interrupts cursors that run past their deadline: one thread for all queries (a
    threading.Timer per query would start a thread per query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._active: dict[int, duckdb.DuckDBPyConnection] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, cur: duckdb.DuckDBPyConnection, seconds: float) -> int:
        with self._cond:
            token = next(self._ids)
            self._active[token] = cur
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="query-watchdog")
                self._thread.daemon = True
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()  # the new deadline is the nearest
            return token

    def done(self, token: int) -> None:
        """After this returns, the cursor is never interrupted (it may be closed)."""
        with self._cond:
            self._active.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._active:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                self._active.pop(token).interrupt()


_watchdog = _Watchdog()


def dialect_of(store: Store) -> Dialect:
    """The SQL the store's engine speaks."""
    return CLICKHOUSE if store.engine == "clickhouse" else DUCKDB


class _BadPattern(Exception):
    """The engine refused a regular expression (which one: _check_patterns)."""


def _execute(store: Store, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    # By engine, not class: a command the server runs for the CLI gets its store wrapped.
    if store.engine == "clickhouse":
        return _execute_clickhouse(store, sql, params)
    try:
        return _execute_duckdb(cast(EventStore, store), sql, params)
    except duckdb.InvalidInputException as exc:
        raise _BadPattern from exc


def execute_sql(store: Store, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    """A statement of the engine's SQL (a Sql of its dialect) with the engine's deadline."""
    return _execute(store, sql, params)


def _execute_clickhouse(store: Store, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    from app.storage.clickhouse.engine import ClickHouseQueryError

    try:
        # A statement's own deadline, as the watchdog gives DuckDB's.
        return store.query(f"{sql} SETTINGS max_execution_time = {QUERY_TIMEOUT_S}", params)
    except ClickHouseQueryError as exc:
        if exc.code == 427:  # CANNOT_COMPILE_REGEXP
            raise _BadPattern from exc
        if exc.code == 159:  # TIMEOUT_EXCEEDED
            raise QueryTimeout(f"the query took longer than {QUERY_TIMEOUT_S:.0f} s") from exc
        raise


def _execute_duckdb(store: EventStore, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    with store.reading() as cur:
        token = _watchdog.watch(cur, QUERY_TIMEOUT_S)
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query took longer than {QUERY_TIMEOUT_S:.0f} s") from exc
        finally:
            _watchdog.done(token)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def run_query_sync(store: Store, q: Query, *, bots: bool = False) -> Result:
    """Blocking: compile for the store's engine, execute, map key columns back to dimension
    names. bots: also count the bot hits of the period's days."""
    compiled = compile_query(q, dialect_of(store))
    if store.engine == "clickhouse":
        # ClickHouse compiles a pattern only where it evaluates it: ("^/" OR "(") passes
        # when every row matches "^/". Checked first, as DuckDB refuses it whatever the rows.
        _check_patterns(q.filters)
    try:
        raw = _execute(store, compiled.sql, compiled.params)
    except _BadPattern as exc:
        _check_patterns(q.filters)  # a bad pattern is the asker's error: a 400
        raise exc.__cause__ or exc from None
    names = [*q.properties, *(["time"] if q.interval else [])]
    first_metric, total_at = len(names), len(names) + len(q.metrics)
    rows = []
    # Without a page every row came back (no window counted them: compile.py); with one,
    # every row carries the count before paging.
    paged = q.limit is not None
    total = raw[0][total_at] if paged and raw else len(raw)
    for record in raw:
        keys, values = record[:first_metric], record[first_metric:total_at]
        row = dict(zip(names, keys, strict=True))
        row.update((m, _plain(v)) for m, v in zip(q.metrics, values, strict=True))
        rows.append(row)
    bot_count = bot_hits(store, q) if bots else None
    if not raw and q.offset and q.limit is not None:
        # A page past the end has no row to carry the count: ask for the first one.
        first = run_query_sync(store, msgspec.structs.replace(q, limit=1, offset=0))
        total = first.total_rows
    if q.interval:
        rows = zero_fill(q, rows)
    return Result(rows=rows, total_rows=int(total), bot_hits=bot_count)


def _check_patterns(filters: tuple[FilterTree, ...]) -> None:
    """Raise InvalidRequest naming the first regular expression RE2 refuses, asking an
    in-memory DuckDB (both engines compile patterns with RE2). On DuckDB only after a
    statement failed (valid patterns cost nothing); on ClickHouse before (see
    run_query_sync), each pattern's verdict cached."""
    patterns = (
        value
        for tree in filters
        for leaf in filter_leaves(tree)
        if leaf.op.startswith("matches")
        for value in leaf.values
    )
    for pattern in dict.fromkeys(patterns):
        reason = _pattern_error(pattern)
        if reason is not None:
            raise InvalidRequest(f"invalid regular expression {pattern!r}: {reason}")


@lru_cache(maxsize=1024)
def _pattern_error(pattern: str) -> str | None:
    """Why RE2 (through an in-memory DuckDB) refuses a pattern; None if it takes it."""
    with duckdb.connect() as con:
        try:
            con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.InvalidInputException as exc:
            return str(exc).removeprefix("Invalid Input Error: ")
    return None


def bucket_starts(period: Period, interval: str) -> list[datetime]:
    """Every local bucket start (naive wall-clock) of the period, in order."""
    zone = ZoneInfo(period.timezone)
    if interval == "minute":
        return _minute_starts(period, zone)
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
    if interval == "day":  # a year's series: one datetime a day, no calendar steps
        first = datetime(day.year, day.month, day.day)
        return [first + timedelta(days=i) for i in range((period.last_day - day).days + 1)]
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    starts = []
    while day <= period.last_day:
        starts.append(datetime(day.year, day.month, day.day))
        day = _next(day, interval)
    return starts


def _minute_starts(period: Period, zone: ZoneInfo) -> list[datetime]:
    """Every local minute the range touches, once (the hour a DST fall-back repeats is one
    set of buckets, as the compiler's local wall-clock buckets are)."""
    start = period.start.replace(tzinfo=UTC, second=0, microsecond=0)
    end = period.end.replace(tzinfo=UTC)
    seen: dict[datetime, None] = {}
    at = start
    while at < end:
        seen[at.astimezone(zone).replace(tzinfo=None)] = None
        at += timedelta(minutes=1)
    return list(seen)


def _next(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_label(local_start: datetime, zone: ZoneInfo) -> str:
    """A local bucket start as the UTC instant, ISO-8601 with milliseconds: ...T08:00:00.000Z."""
    if local_start.hour == 0 and local_start.minute == 0:
        return _midnight_label(local_start.date(), zone)
    utc = local_start.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


@lru_cache(maxsize=16384)
def _midnight_label(day: date, zone: ZoneInfo) -> str:
    # Daily series repeat the same days request after request: convert each day once.
    return local_midnight_utc(day, zone).isoformat(timespec="milliseconds") + "Z"


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


def first_event_day(store: Store, site_id: str) -> date | None:
    """The site's first local day with data ("all" starts there): raw events, or the rolled-up
    days whose raw events were pruned."""
    return store.first_day(site_id)


def bot_hits(store: Store, q: Query) -> int:
    """Bot hits dropped for the site on the period's local days (meta.filtered_bot_traffic)."""
    return store.bot_hits(q.site_id, q.period.first_day, q.period.last_day)
