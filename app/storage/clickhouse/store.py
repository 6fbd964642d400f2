"""The ClickHouse event store (issue #24, preview): the append path, reads, rollup rows and
deletes of EventStore, on ClickHouse's embedded engine (chdb://PATH) or a server
(http(s)://...). The schema is schema.sql beside this file.

Exactly-once: every insert carries insert_deduplication_token = the batch's id plus the
table, and each table remembers its last 10,000 tokens, so a batch retried after an error
or a crash (the same id) inserts nothing it inserted before, table by table. Acknowledged
after commit: an insert returns once its part is fsynced (fsync_after_insert on the
tables); on a database of ClickHouse's Replicated engine every insert also waits for a
quorum (QUORUM), so that a reply means a majority of the replicas have it.

SQL passed to query() is ClickHouse's: parameters are {p0:Type}, {p1:Type}, ... in the
order of `params` (DuckDB's `?` are not understood)."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from importlib import resources
from typing import Any

import pyarrow as pa

from app.storage.clickhouse import imports, redate
from app.storage.clickhouse.engine import literal, open_engine, query_error
from app.storage.events import (
    COLUMNS,
    DAILY_STATS_COLUMNS,
    EVENT_SCHEMA,
    EXPORT_BATCH,
    EXPORT_ORDER,
    USER_COLUMNS,
    Row,
    StoreLocked,
    rows_to_arrow,
)
from app.storage.rollups import ROLLUP_COLUMNS, DailyTotals

log = logging.getLogger(__name__)
_EPOCH = date(1970, 1, 1)
# daily_rollups' columns, in schema.sql's order (DuckDB's compact form plus build).
_PHYSICAL_ROLLUPS = pa.schema(
    [
        ("property", pa.string()),
        ("site_id", pa.string()),
        ("day", pa.date32()),
        ("value", pa.string()),
        ("build", pa.uint64()),
        ("visitors", pa.int64()),
        ("extra_visits", pa.int64()),
        ("extra_pageviews", pa.int64()),
        ("custom_events", pa.int64()),
        ("bounces", pa.int64()),
        ("duration", pa.float64()),
        ("extra_session_pageviews", pa.int64()),
        ("revenue_units", pa.int64()),
        ("revenue_micros", pa.int32()),
        ("engaged_ms", pa.int64()),
        ("engaged_visitors", pa.int64()),
        ("scroll_sum", pa.int64()),
        ("scroll_count", pa.int64()),
        ("event_duration", pa.float64()),
    ]
)
_ROLLUP_DAYS = pa.schema(
    [
        ("site_id", pa.string()),
        ("day", pa.date32()),
        ("build", pa.uint64()),
        ("events", pa.int64()),
        ("built_at", pa.timestamp("us")),
        ("pruned", pa.bool_()),
    ]
)
# Retention by TTL (keep_at_most): the tables with a day, and how many days after the
# instance's limit ClickHouse drops a day.
# The rows an export reads at a time (a run of days; a day with more is read alone).
EXPORT_READ_ROWS = 500_000
_TTL_TABLES = ("events", "daily_rollups", "rollup_days", "bot_counts", "excluded_counts")
# What `avocet compact` merges: every table of the schema that keeps rows.
_COMPACTED = (*_TTL_TABLES, "imports", "import_days", "import_rollups", "imported_stats")
TTL_MARGIN_DAYS = 2
_BOTS = pa.schema([("site_id", pa.string()), ("day", pa.date32()), ("hits", pa.int64())])
_EXCLUDED = pa.schema(
    [("site_id", pa.string()), ("day", pa.date32()), ("reason", pa.string()), ("hits", pa.int64())]
)
# A site's daily totals rows, components in ROLLUP_COLUMNS order (rollups.TOTALS_ROWS).
_TOTALS_ROWS = (
    "SELECT day, visitors, visitors + extra_visits, visitors + extra_pageviews,"
    " visitors + extra_pageviews + custom_events, custom_events, bounces, duration,"
    " visitors + extra_pageviews + extra_session_pageviews,"
    " revenue_units * 1000000 + revenue_micros, engaged_ms, engaged_visitors, scroll_sum,"
    " scroll_count, event_duration FROM daily_rollups_current"
    " WHERE site_id = {p0:String} AND property = '' ORDER BY day"
)


# Every MergeTree table's cleanup thread looks for replaced parts to remove every second
# (ClickHouse's default backs off to one look in 5 minutes on a quiet table): a deletion
# waits for the parts its rows were in to leave the disk before it says done (rewrite()).
# Added to every CREATE TABLE of schema.sql; a table made by an older Avocet gets them by
# ALTER when the store opens, in force from the next start (when the table starts).
PROMPT_CLEANUP = {
    "cleanup_delay_period": 1,
    "max_cleanup_delay_period": 1,
    "cleanup_delay_period_random_add": 0,
    # The text of a finished DELETE (its WHERE: a site id) is kept on disk for the last
    # 100 mutations by default; the newest one only, here.
    "finished_mutations_to_keep": 1,
}
# How long rewrite() waits for replaced parts to be removed (a long read still holding
# one delays it) before it says done anyway, with a warning (`avocet doctor` shows them).
CLEANUP_WAIT_S = 60.0
# A table engine in schema.sql (MergeTree, SummingMergeTree(hits), ...).
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)\b")
# On a Replicated database an insert is acknowledged once a majority of the replicas
# have it (each writer a part at a time: parallel quorum inserts); a replica down longer
# than the timeout fails the insert, which the writer retries under the same token.
QUORUM = {"insert_quorum": "auto", "insert_quorum_parallel": 1, "insert_quorum_timeout": 60_000}
# The lightweight DELETEs in system.mutations (ClickHouse records one as this UPDATE).
_DELETES = "database = currentDatabase() AND position(command, '_row_exists = 0') > 0"


def schema_statements(replicated: bool = False) -> list[str]:
    """schema.sql's statements, comments dropped, in order. replicated: for a database of
    ClickHouse's Replicated engine, every table engine its Replicated* twin (default Keeper
    path and replica name: the server's default_replica_path, /clickhouse/tables/{uuid}/
    {shard}, and {replica}), keeping 10,000 insert tokens as the others do."""
    text = resources.files("app.storage.clickhouse").joinpath("schema.sql").read_text()
    lines = [line.split("--", 1)[0].rstrip() for line in text.splitlines()]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    # Every table's SETTINGS end with PROMPT_CLEANUP: it must be there when the table
    # starts (its cleanup schedule is set then; an ALTER counts from the next start).
    added = dict(
        PROMPT_CLEANUP, **({"replicated_deduplication_window": 10_000} if replicated else {})
    )
    given = ", ".join(f"{k} = {literal(v)}" for k, v in added.items())
    out = []
    for statement in statements:
        if statement.startswith("CREATE TABLE"):
            statement = f"{statement}, {given}"
            if replicated:
                statement = _ENGINE.sub(r"ENGINE = Replicated\1", statement)
        out.append(statement)
    return out


def _plain(column: pa.ChunkedArray) -> list[Any]:
    """A result column as Python values the way DuckDB gives them: timestamps naive UTC,
    maps as dicts (an empty map as None: ClickHouse maps are never NULL, and DuckDB stores
    a hit without props as NULL)."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        column = column.cast(pa.timestamp(kind.unit))
    values: list[Any] = column.to_pylist()
    if pa.types.is_map(kind):
        return [dict(v) if v else None for v in values]
    return values


def _days(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def _rollup_arrow(rows: Sequence[tuple[Any, ...]], build: int) -> pa.Table:
    """Logical rollup rows (ROLLUP_COLUMNS tuples) in daily_rollups' compact columns."""
    encoded = []
    for row in rows:
        r = dict(zip(ROLLUP_COLUMNS, row, strict=True))
        revenue = Decimal(r["revenue"] or 0)
        units = int(revenue.to_integral_value(rounding=ROUND_FLOOR))
        encoded.append(
            (
                r["property"],
                r["site_id"],
                r["day"],
                None if r["value"] is None else str(r["value"]),
                build,
                r["visitors"],
                r["visits"] - r["visitors"],
                r["pageviews"] - r["visitors"],
                r["custom_events"],
                r["bounces"],
                float(r["duration"]),
                r["session_pageviews"] - r["pageviews"],
                units,
                int((revenue - units) * 1_000_000),
                r["engaged_ms"],
                r["engaged_visitors"],
                r["scroll_sum"],
                r["scroll_count"],
                float(r["event_duration"]),
            )
        )
    return _table(encoded, _PHYSICAL_ROLLUPS)


def _table(rows: Sequence[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


class ClickHouseEventStore:
    """EventStore's append path, reads, rollup rows and deletes on ClickHouse. append() may
    be called from any thread (the engine serialises); every insert is idempotent by its
    batch id."""

    engine = "clickhouse"  # the SQL its query() takes (app/query/dialect.py)

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._engine = open_engine(dsn)
        self._last_build = 0
        self._build_lock = threading.Lock()
        # A database of ClickHouse's Replicated engine (README "ClickHouse"): it sends
        # every CREATE, ALTER and DROP to all replicas itself; its tables must be
        # Replicated* for their rows to be copied, and inserts wait for a quorum.
        engines = self.query("SELECT engine FROM system.databases WHERE name = currentDatabase()")
        self.replicated = engines == [("Replicated",)]
        # Mutations (deletion masks applied) wait for every replica when replicated.
        self.mutations_sync = 2 if self.replicated else 1
        for statement in schema_statements(self.replicated):
            self._engine.run(statement, {})
        self._prompt_cleanup()

    def _prompt_cleanup(self) -> None:
        """PROMPT_CLEANUP on every table of the store that lacks it (one ALTER per table,
        once: engine_full shows a table's own settings); it takes effect when the table
        next starts."""
        tables = self.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
            " AND engine LIKE '%MergeTree' AND NOT position(engine_full, {p0:String})",
            ["max_cleanup_delay_period"],
        )
        given = ", ".join(f"{k} = {literal(v)}" for k, v in PROMPT_CLEANUP.items())
        for (table,) in tables:
            self.execute(f"ALTER TABLE {table} MODIFY SETTING {given}")

    @classmethod
    def unheld(cls, dsn: str) -> ClickHouseEventStore:
        """The store for a command run beside no server; StoreLocked when the dsn is a chdb
        folder a running server holds (ClickHouse locks it for one process)."""
        try:
            return cls(dsn)
        except Exception as exc:  # chdb's RuntimeError; through clickhouse-connect, its own
            if "EmbeddedServer" in str(exc) or "Cannot lock" in str(exc):
                raise StoreLocked(f"{dsn} is held by a running server") from exc
            raise

    def append(
        self,
        rows: Sequence[Row],
        bot_hits: Iterable[tuple[str, int, int]] = (),
        excluded: Iterable[tuple[str, int, str, int]] = (),
        batch_id: str | None = None,
    ) -> None:
        """Insert rows, add bot hits (site_id, day, hits) and excluded hits (site_id, day,
        reason, hits); durable on return. batch_id: the writer's id of this batch, the same
        on a retry (then nothing already inserted is inserted again); None: a fresh one (an
        identical batch is then still a different batch)."""
        token = batch_id or uuid.uuid4().hex
        bots = [(s, _days(d), h) for s, d, h in bot_hits]
        shielded = [(s, _days(d), r, h) for s, d, r, h in excluded]
        if rows:
            self._insert("events", rows_to_arrow(rows), token)
        if bots:
            self._insert("bot_counts", _table(bots, _BOTS), token)
        if shielded:
            self._insert("excluded_counts", _table(shielded, _EXCLUDED), token)

    def append_table(self, events: pa.Table, batch_id: str) -> None:
        """Insert raw events given as an Arrow table of EVENT_SCHEMA (a copy from another
        store), once per batch_id: a batch retried after a failure inserts nothing twice."""
        self._insert("events", events.select(list(COLUMNS)).cast(EVENT_SCHEMA), batch_id)

    def insert_table(self, table: str, data: pa.Table, batch_id: str) -> None:
        """Insert rows (an Arrow table of `table`'s columns) into bot_counts or
        excluded_counts, once per batch_id."""
        schema = {"bot_counts": _BOTS, "excluded_counts": _EXCLUDED}[table]
        self._insert(table, data.select(schema.names).cast(schema), batch_id)

    def _insert(self, table: str, data: pa.Table, token: str) -> None:
        self._engine.insert(
            table,
            data,
            {
                "insert_deduplicate": 1,
                "insert_deduplication_token": f"{token}:{table}",
                # One part per insert, whatever its size: the token then covers the batch.
                "max_insert_block_size": max(data.num_rows, 1),
                "min_insert_block_size_rows": 0,
                "min_insert_block_size_bytes": 0,
                **(QUORUM if self.replicated else {}),
            },
        )

    def quorum_clause(self) -> str:
        """` SETTINGS <QUORUM>` for an INSERT ... SELECT on a Replicated database, else ''."""
        if not self.replicated:
            return ""
        return " SETTINGS " + ", ".join(f"{k} = {literal(v)}" for k, v in QUORUM.items())

    @staticmethod
    def _params(params: Sequence[object] | Mapping[str, object]) -> Mapping[str, object]:
        if isinstance(params, Mapping):
            return params
        return {f"p{i}": value for i, value in enumerate(params)}

    def arrow(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> pa.Table:
        """One read as an Arrow table (ClickHouse's types: timestamps carry 'UTC'); a
        refusal raises ClickHouseQueryError."""
        try:
            return self._engine.arrow(sql, self._params(params))
        except Exception as exc:  # the engines' own error types (chdb's, the driver's)
            raise query_error(exc) from exc

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> None:
        """One statement whose result is not wanted (DDL, a DELETE)."""
        self._engine.run(sql, self._params(params))

    def query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[Any, ...]]:
        """One read; values as EventStore.query gives them."""
        table = self.arrow(sql, params)
        columns = [_plain(c) for c in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def query_dicts(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[dict[str, Any]]:
        """Like query(), with rows as dicts keyed by column name."""
        table = self.arrow(sql, params)
        names = table.column_names
        return [dict(zip(names, row, strict=True)) for row in self.query_rows(table)]

    @staticmethod
    def query_rows(table: pa.Table) -> list[tuple[Any, ...]]:
        columns = [_plain(c) for c in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def events(self, site_id: str) -> list[dict[str, Any]]:
        """A site's raw events, EVENT_SCHEMA's columns, in (ts, session_id, name) order."""
        return self.query_dicts(
            f"SELECT {', '.join(COLUMNS)} FROM events WHERE site_id = {{p0:String}}"
            " ORDER BY ts, session_id, name",
            [site_id],
        )

    def bot_hits(self, site_id: str, first: date, last: date) -> int:
        rows = self.query(
            "SELECT sum(hits) FROM bot_counts WHERE site_id = {p0:String}"
            " AND day BETWEEN {p1:Date} AND {p2:Date}",
            [site_id, first, last],
        )
        return int(rows[0][0] or 0) if rows else 0

    def excluded_hits(self, site_id: str, since: date) -> dict[str, int]:
        rows = self.query(
            "SELECT reason, sum(hits) FROM excluded_counts WHERE site_id = {p0:String}"
            " AND day >= {p1:Date} GROUP BY reason",
            [site_id, since],
        )
        return {str(reason): int(n) for reason, n in rows}

    def rolled_days(self, site_id: str) -> frozenset[date]:
        return frozenset(
            r[0]
            for r in self.query(
                "SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String}", [site_id]
            )
        )

    def rollup_totals(self, site_id: str) -> DailyTotals:
        return DailyTotals(self.query(_TOTALS_ROWS, [site_id]))

    # The reads of jobs, ingest and UI besides stats questions (EventStore's, in this SQL).

    def day_counts(self, site_id: str, first: date | None, last: date) -> dict[date, int]:
        rows = self.query(
            "SELECT day, count() FROM events WHERE site_id = {p0:String}"
            " AND day BETWEEN {p1:Date} AND {p2:Date} GROUP BY day",
            [site_id, first or date(1970, 1, 1), last],
        )
        return {day: int(n) for day, n in rows}

    def rollup_day_states(self, site_id: str) -> dict[date, tuple[int, bool]]:
        rows = self.query(
            "SELECT day, events, pruned FROM rollup_days FINAL WHERE site_id = {p0:String}",
            [site_id],
        )
        return {day: (int(n), bool(pruned)) for day, n, pruned in rows}

    def prunable(self, site_id: str, before: date) -> int:
        return self._count(
            "events",
            "site_id = {p0:String} AND day < {p1:Date} AND day IN"
            " (SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String})",
            [site_id, before],
        )

    def first_day(self, site_id: str) -> date | None:
        # min() of no rows is NULL (QUERY_SETTINGS): the two minimums compared here.
        found = [
            row[0]
            for table in ("events", "rollup_days")
            for row in self.query(
                f"SELECT min(day) FROM {table} WHERE site_id = {{p0:String}}", [site_id]
            )
            if row[0] is not None
        ]
        return min(found) if found else None

    def data_inventory(self, site_id: str, first: date | None, last: date | None) -> dict[str, int]:
        days = "site_id = {p0:String} AND day BETWEEN {p1:Date} AND {p2:Date}"
        span: list[object] = [site_id, first or date(1970, 1, 1), last or date(2149, 6, 6)]
        rolled = self.query(f"SELECT count() FROM rollup_days FINAL WHERE {days}", span)[0][0]
        return {
            "events": self._count("events", days, span),
            "rolled_up_days": int(rolled),
            "rollup_rows": self._count("daily_rollups_current", days, span),
        }

    def user_events(
        self, site_id: str, user_key: int, since: datetime, limit: int
    ) -> list[dict[str, Any]]:
        rows = self.query_dicts(
            f"SELECT ts, day, {USER_COLUMNS}, mapKeys(props) AS property_keys FROM events"
            " WHERE site_id = {p0:String} AND user_key = {p1:Int64}"
            " AND ts >= {p2:DateTime64(6, 'UTC')} ORDER BY ts, name LIMIT {p3:Int64}",
            [site_id, user_key, since, limit],
        )
        for row in rows:  # a map's keys: None where it is empty, as from DuckDB's NULL
            row["property_keys"] = row["property_keys"] or None
        return rows

    def user_days(self, site_id: str, user_key: int) -> set[date]:
        rows = self.query(
            "SELECT DISTINCT day FROM events WHERE site_id = {p0:String} AND user_key = {p1:Int64}",
            [site_id, user_key],
        )
        return {r[0] for r in rows}

    def rewrite(self) -> int:
        """Physically remove the rows lightweight DELETEs masked (what a deletion that must
        delete ends with, as EventStore.rewrite() does for its file): every part with masked
        rows is rewritten without them (in every table that has one: the imports' too), and
        the parts they were in, and the DELETEs' own records (their WHERE names a site or a
        user), are gone from disk before it returns. Returns the tables' bytes on disk."""
        masked = self.query(
            "SELECT DISTINCT table FROM system.parts WHERE active AND has_lightweight_delete"
            " AND database = currentDatabase()"
            f" UNION DISTINCT SELECT DISTINCT table FROM system.mutations WHERE {_DELETES}"
            " ORDER BY table"
        )
        # A table whose DELETE a merge applied already gets its APPLY too: the newest
        # mutation is the one a table keeps a record of (finished_mutations_to_keep = 1).
        for (table,) in masked:
            self.execute(
                f"ALTER TABLE {table} APPLY DELETED MASK"
                f" SETTINGS mutations_sync = {self.mutations_sync}"
            )
        self.await_cleanup()
        rows = self.query(
            "SELECT sum(bytes_on_disk) FROM system.parts"
            " WHERE active AND database = currentDatabase()"
        )
        return int(rows[0][0] or 0)

    def await_cleanup(self, timeout: float = CLEANUP_WAIT_S) -> bool:
        """Wait until every part replaced so far (by a merge, a mask applied) is removed
        from disk, and the records of finished DELETEs: the rows a deletion masked are in
        no file after. False when some are still there after `timeout` seconds (a long read
        holds them), with a warning."""
        (now,) = self.query("SELECT toUnixTimestamp(now())")[0]
        deadline = time.monotonic() + timeout
        while True:
            (left,) = self.query(
                "SELECT (SELECT count() FROM system.parts WHERE database = currentDatabase()"
                " AND NOT active AND remove_time > 0"
                " AND toUnixTimestamp(remove_time) <= {p0:UInt32})"
                f" + (SELECT count() FROM system.mutations WHERE {_DELETES} AND is_done)",
                [now],
            )[0]
            if not left:
                return True
            if time.monotonic() > deadline:
                log.warning(
                    "%d replaced parts or DELETE records are still on disk after %.0f s"
                    " (held by a read?);"
                    " ClickHouse removes them when it can",
                    left,
                    timeout,
                )
                return False
            time.sleep(0.1)

    def imported_span(self, site_id: str) -> tuple[date, date] | None:
        # min() and max() of no rows are NULL (QUERY_SETTINGS).
        first, last = self.query(
            "SELECT min(day), max(day) FROM imported_stats WHERE site_id = {p0:String}", [site_id]
        )[0]
        return None if first is None else (first, last)

    def data_span(self, site_id: str) -> tuple[date, date] | None:
        # min() and max() of no rows are NULL (QUERY_SETTINGS): the tables' spans joined.
        found = [
            day
            for table in ("events", "rollup_days")
            for row in self.query(
                f"SELECT min(day), max(day) FROM {table} WHERE site_id = {{p0:String}}",
                [site_id],
            )
            for day in row
            if day is not None
        ]
        return (min(found), max(found)) if found else None

    def pruned_days(self, site_id: str, first: date, last: date) -> list[date]:
        rows = self.query(
            "SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String} AND pruned"
            " AND day BETWEEN {p1:Date} AND {p2:Date} ORDER BY day",
            [site_id, first, last],
        )
        return [r[0] for r in rows]

    def daily_stats(self, site_id: str, prop: str, days: Sequence[date]) -> list[dict[str, Any]]:
        return self.query_dicts(
            f"SELECT {DAILY_STATS_COLUMNS} FROM daily_stats WHERE site_id = {{p0:String}}"
            " AND property = {p1:String} AND has({p2:Array(Date)}, day)",
            [site_id, prop, list(days)],
        )

    def visitors_since(self, site_id: str, since: datetime) -> int:
        rows = self.query(
            "SELECT count(DISTINCT visitor_id) FROM events WHERE site_id = {p0:String}"
            " AND ts >= {p1:DateTime64(6, 'UTC')}",
            [site_id, since],
        )
        return int(rows[0][0])

    def newest_events(self, site_id: str, limit: int) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT ts, name, pathname, source, device, country FROM events"
            " WHERE site_id = {p0:String} AND name != 'engagement'"
            " ORDER BY ts DESC LIMIT {p1:Int64}",
            [site_id, limit],
        )

    def open_sessions(
        self, since: datetime, columns: Sequence[str]
    ) -> tuple[int, list[tuple[Any, ...]]]:
        top = self.query("SELECT max(session_id) FROM events")
        recent = self.query(
            f"SELECT site_id, visitor_id, session_id, ts, {', '.join(columns)} FROM events"
            " WHERE ts >= {p0:DateTime64(6, 'UTC')}"
            " ORDER BY site_id, visitor_id, ts DESC LIMIT 1 BY site_id, visitor_id",
            [since],
        )
        return int(top[0][0] or 0) if top else 0, recent

    def delete_rolled_up_raw(self, site_id: str, before: date) -> None:
        """Delete raw events of rolled-up days before `before`, and mark those days pruned
        (a new row of the same build: the newer insert is the one FINAL keeps)."""
        days = self.query(
            "SELECT day, build, events, built_at FROM rollup_days FINAL"
            " WHERE site_id = {p0:String} AND day < {p1:Date} AND NOT pruned",
            [site_id, before],
        )
        self._delete(
            "events",
            "site_id = {p0:String} AND day < {p1:Date} AND day IN"
            " (SELECT day FROM rollup_days FINAL WHERE site_id = {p0:String})",
            [site_id, before],
        )
        if days:
            marked = [(site_id, day, build, n, at, True) for day, build, n, at in days]
            self._insert("rollup_days", _table(marked, _ROLLUP_DAYS), f"pruned:{uuid.uuid4().hex}")

    def export_batches(
        self,
        table: str,
        columns: Sequence[str],
        site_id: str,
        first: date | None,
        last: date | None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Runs of the site's days of at most EXPORT_READ_ROWS rows per read (a run held
        as Arrow columns), turned into tuples a batch at a time, in order."""
        counts = self.query(
            f"SELECT day, count() FROM {table} WHERE site_id = {{p0:String}}"
            " AND day BETWEEN {p1:Date} AND {p2:Date} GROUP BY day ORDER BY day",
            [site_id, first or date(1970, 1, 1), last or date(2149, 6, 6)],
        )
        runs: list[tuple[date, date]] = []
        held = 0
        for day, n in counts:
            if runs and held + n <= EXPORT_READ_ROWS:
                runs[-1], held = (runs[-1][0], day), held + n
            else:
                runs.append((day, day))
                held = n
        select = ", ".join(columns)
        for start, end in runs:
            read = self.arrow(
                f"SELECT {select} FROM {table} WHERE site_id = {{p0:String}}"
                f" AND day BETWEEN {{p1:Date}} AND {{p2:Date}} ORDER BY {EXPORT_ORDER[table]}",
                [site_id, start, end],
            )
            for at in range(0, read.num_rows, EXPORT_BATCH):
                yield self.query_rows(read.slice(at, EXPORT_BATCH))

    def pending_redate(self, site_id: str) -> str | None:
        return redate.pending_redate(self, site_id)

    def redate_site(
        self,
        site_id: str,
        local_day: str,
        params: Sequence[object],
        arrivals: Sequence[tuple[Any, ...]] = (),
        zone: str = "",
    ) -> int:
        """Re-date the site's raw events (app/storage/clickhouse/redate.py)."""
        return redate.redate_site(self, site_id, local_day, params, arrivals, zone)

    def health(self) -> dict[str, Any]:
        """What `avocet doctor` reports of this store, from ClickHouse's own tables only (no
        part is read): rows and active parts per table, bytes on disk, bytes of replaced
        parts not removed yet (a deletion's rows linger there until ClickHouse's cleanup),
        unfinished mutations, re-datings and imports cut short, the TTL; `problems`:
        failing mutations and parts ClickHouse found broken and set aside (detached_parts, reason
        broken*; the covered parts a restart after a crash sets aside are not problems)."""
        tables = (*_TTL_TABLES, "redates")
        sizes: dict[tuple[str, bool], tuple[int, int]] = {}
        for table, active, count, size in self.query(
            "SELECT table, active, count(), sum(bytes_on_disk) FROM system.parts"
            " WHERE database = currentDatabase() GROUP BY table, active"
        ):
            sizes[(str(table), bool(active))] = (int(count), int(size))
        problems: list[str] = []
        mutations = self.query(
            "SELECT table, command, latest_fail_reason FROM system.mutations"
            " WHERE database = currentDatabase() AND NOT is_done"
        )
        for table, command, reason in mutations:
            if reason:
                problems.append(f"table {table}: mutation {command!r} fails: {reason}")
        for table, name, reason in self.query(  # not the 'ignored' ones a restart sets aside
            "SELECT table, name, reason FROM system.detached_parts"
            " WHERE database = currentDatabase() AND startsWith(reason, 'broken')"
        ):
            problems.append(f"table {table}: part {name} set aside by ClickHouse ({reason})")
        replicas = self._replicas(problems)
        engine = self.query(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase()"
            " AND name = 'events'"
        )
        ttl = re.search(r"TTL day \+ toIntervalDay\((\d+)\)", str(engine[0][0]))
        return {
            "engine": "clickhouse",
            "dsn": re.sub(r"//[^@/]*@", "//***@", self.dsn),  # never a password
            "rows": {t: self._count(t, "1", []) for t in tables},
            "parts": {t: sizes.get((t, True), (0, 0))[0] for t in tables},
            "bytes": sum(size for (_, active), (_, size) in sizes.items() if active),
            "replaced_bytes": sum(size for (_, active), (_, size) in sizes.items() if not active),
            "mutations_pending": len(mutations),
            "redates_pending": sorted(str(r[0]) for r in self.query("SELECT site_id FROM redates")),
            "imports_pending": imports.pending(self),
            "ttl_days": int(ttl.group(1)) - TTL_MARGIN_DAYS if ttl else 0,
            "replicas": replicas,
            "problems": problems,
        }

    def _replicas(self, problems: list[str]) -> dict[str, Any]:
        """The replicated tables' state on this replica (system.replicas; none on a plain
        database): how many, the fewest replicas active, the most in all, the longest delay.
        A table read-only here (no Keeper session: its inserts fail) is a problem, and so,
        on a Replicated database, is a table that is not replicated (made there by an Avocet
        that didn't make replicated tables): its rows are on this replica only."""
        found = self.query(
            "SELECT table, is_readonly, active_replicas, total_replicas, absolute_delay"
            " FROM system.replicas WHERE database = currentDatabase() ORDER BY table"
        )
        for table, readonly, *_ in found:
            if readonly:
                problems.append(
                    f"table {table}: read-only on this replica (no Keeper session): inserts fail"
                )
        if self.replicated:
            for (table,) in self.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase()"
                " AND engine LIKE '%MergeTree' AND NOT startsWith(engine, 'Replicated')"
                " ORDER BY name"
            ):
                problems.append(
                    f"table {table}: not replicated on a Replicated database: its rows are"
                    " on this replica only (copy them into a replicated table)"
                )
        return {
            "tables": len(found),
            "active": min((int(r[2]) for r in found), default=0),
            "total": max((int(r[3]) for r in found), default=0),
            # (a read-only table's delay counts from 1970: it has no queue to read)
            "delay_s": max((int(r[4]) for r in found if not r[1]), default=0),
        }

    def compact(
        self, now: datetime | None = None, progress: Callable[[str, int, int], None] | None = None
    ) -> dict[str, int]:
        """`avocet compact` on ClickHouse: merge each finished month's parts of every table
        into one (OPTIMIZE ... FINAL: what the background merges do in their own time; a
        ReplacingMergeTree's replaced rows and a deletion's masked rows go with it), and each
        unpartitioned table's parts. Returns, per "table partition", the parts it had.
        progress(name, i, n) before each."""
        month = int((now or datetime.now(UTC)).strftime("%Y%m"))
        found = [
            (str(table), str(partition), int(parts))
            for table, partition, parts in self.query(
                "SELECT table, partition_id, count() FROM system.parts WHERE active"
                " AND database = currentDatabase() AND has({p0:Array(String)}, table)"
                " GROUP BY table, partition_id HAVING count() > 1 ORDER BY table, partition_id",
                [list(_COMPACTED)],
            )
            if partition == "all" or int(partition) < month  # a month still written: later
        ]
        done: dict[str, int] = {}
        for i, (table, partition, parts) in enumerate(found, 1):
            if progress:
                progress(f"{table} {partition}", i, len(found))
            self.execute(f"OPTIMIZE TABLE {table} PARTITION ID '{partition}' FINAL")
            done[f"{table} {partition}"] = parts
        return done

    def keep_at_most(self, days: int) -> None:
        """Retention by TTL: ClickHouse's merges drop whatever is older than `days` (the
        instance's [retention] max_total_days, which no site may exceed; 0: no TTL), on every
        table with a day. A backstop behind the prune job, which deletes each site's days
        past its own retention first: the TTL is TTL_MARGIN_DAYS later, so it never takes a
        day the job would keep, in any zone (a site-local day is at most ~1 day ahead of
        UTC), and nothing it takes needs a rollup (past the total retention rollups go too).
        Changed only when it differs (a change is applied to existing parts in the
        background, as ClickHouse materializes a TTL)."""
        want = days + TTL_MARGIN_DAYS if days else None
        for table in _TTL_TABLES:
            rows = self.query(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase()"
                " AND name = {p0:String}",
                [table],
            )
            found = re.search(r"TTL day \+ toIntervalDay\((\d+)\)", str(rows[0][0]))
            if (int(found.group(1)) if found else None) == want:
                continue
            if want is None:
                self.execute(f"ALTER TABLE {table} REMOVE TTL")
            else:
                self.execute(f"ALTER TABLE {table} MODIFY TTL day + toIntervalDay({want})")

    def checkpoint_due(self) -> bool:
        """Never: ClickHouse writes each insert's part whole (no WAL to fold)."""
        return False

    def checkpoint(self) -> None:
        """Nothing to fold (see checkpoint_due)."""

    def _next_build(self) -> int:
        with self._build_lock:
            self._last_build = max(self._last_build + 1, time.time_ns())
            return self._last_build

    def replace_rollups(
        self,
        site_id: str,
        days: Sequence[object],
        rows: Sequence[tuple[Any, ...]],
        counts: Sequence[tuple[object, int]],
        pruned: Collection[object] = (),
        build: int | None = None,
    ) -> None:
        """Swap a site's rollup rows for these days: the rows go in under a new build, then
        rollup_days points at it (the switch readers see), then the older builds' rows of
        these days are deleted. A crash between leaves rows of an unreferenced build, which
        no reader sees and the next rebuild of the day deletes. pruned: days whose raw
        events are gone (a copy of another store's rollups), never rebuilt. build: the
        build to write (a repeat with the same one inserts nothing); None: a new one."""
        build = build if build is not None else self._next_build()
        token = f"rollups:{site_id}:{build}"
        if rows:
            self._insert("daily_rollups", _rollup_arrow(rows, build), token)
        now = datetime.now(UTC).replace(tzinfo=None)
        counted = [(site_id, day, build, n, now, day in pruned) for day, n in counts]
        if counted:
            self._insert("rollup_days", _table(counted, _ROLLUP_DAYS), token)
        listed = list(days)
        uncounted = [d for d in listed if d not in {day for day, _ in counts}]
        if uncounted:
            self.execute(
                "DELETE FROM rollup_days WHERE site_id = {p0:String}"
                " AND has({p1:Array(Date)}, day)",
                [site_id, uncounted],
            )
        if listed:
            self.execute(
                "DELETE FROM daily_rollups WHERE site_id = {p0:String}"
                " AND has({p1:Array(Date)}, day) AND build < {p2:UInt64}",
                [site_id, listed, build],
            )

    def _count(self, table: str, where: str, params: Sequence[object]) -> int:
        rows = self.query(f"SELECT count() FROM {table} WHERE {where}", params)
        return int(rows[0][0]) if rows else 0

    def _delete(self, table: str, where: str, params: Sequence[object]) -> int:
        """Lightweight DELETE (rows masked at once, gone at the next merge); returns how many
        rows matched it."""
        gone = self._count(table, where, params)
        if gone:
            self.execute(f"DELETE FROM {table} WHERE {where}", params)
        return gone

    def delete_user_events(self, site_id: str, user_key: int) -> int:
        """Delete every raw event of one server-side user (by user_key) of a site."""
        return self._delete(
            "events", "site_id = {p0:String} AND user_key = {p1:Int64}", [site_id, user_key]
        )

    def delete_site_data(
        self,
        site_id: str,
        first: date | None = None,
        last: date | None = None,
        before: datetime | None = None,
    ) -> dict[str, int]:
        """Delete a site's raw events, rollups, bot and exclusion counters of its days
        first..last (None: unbounded); raw events only when stamped before `before` (UTC,
        naive; None: all). Returns rows deleted per table (rollups: rows of current builds
        and older ones alike)."""
        days = "site_id = {p0:String} AND day BETWEEN {p1:Date} AND {p2:Date}"
        span: list[object] = [site_id, first or date(1970, 1, 1), last or date(2149, 6, 6)]
        if before is None:
            gone = {"events": self._delete("events", days, span)}
        else:
            stamped = f"{days} AND ts < {{p3:DateTime64(6, 'UTC')}}"
            gone = {"events": self._delete("events", stamped, [*span, before])}
        for table in ("daily_rollups", "rollup_days", "bot_counts", "excluded_counts"):
            gone[table] = self._delete(table, days, span)
        return gone

    def close(self) -> None:
        self._engine.close()
