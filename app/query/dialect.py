"""The compiler's only engine switch (issue #24): the few terms DuckDB and ClickHouse spell
differently. compile*.py write every statement once, through a Dialect; DUCKDB gives the
exact text they wrote before ClickHouse came in (tests/test_compile_snapshots.py), and
CLICKHOUSE the same statement in ClickHouse's SQL. Both engines run with ClickHouse's
QUERY_SETTINGS (app/storage/clickhouse/engine.py): NULL for an aggregate over no rows and
for a LEFT JOIN's missing side, as DuckDB answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal


class Dialect:
    """DuckDB's spelling: `?` parameters bound in text order."""

    name = "duckdb"
    # Daily rollups in their compact columns (app/storage/rollups.py ROLLUP_SUMS apply).
    rollups = "daily_rollups"
    null_date = "NULL::DATE"

    def param(self, index: int, value: object) -> str:
        """The placeholder of the index-th bound value (0-based, in bind order)."""
        return "?"

    def arg_max(self, value: str, by: str) -> str:
        return f"arg_max({value}, {by})"

    def arg_min(self, value: str, by: str) -> str:
        return f"arg_min({value}, {by})"

    def bool_or(self, condition: str) -> str:
        return f"bool_or({condition})"

    def epoch(self, ts: str) -> str:
        """Seconds since 1970 of a timestamp, with its microseconds."""
        return f"epoch({ts})"

    def seconds(self, n: str) -> str:
        """An interval of n seconds (added to a timestamp)."""
        return f"to_seconds({n})"

    def trunc(self, unit: str, value: str) -> str:
        """The start of value's second, minute, hour, day, week (Monday) or month."""
        return f"date_trunc('{unit}', {value})"

    def timestamp(self, value: str) -> str:
        """A DATE or a timestamp as a timestamp (a day bucket on output)."""
        return f"{value}::TIMESTAMP"

    def date(self, value: str) -> str:
        """A timestamp's calendar day (of a local wall-clock timestamp: its local day)."""
        return f"{value}::DATE"

    def contains(self, text: str, part: str) -> str:
        return f"contains({text}, {part})"

    def lower(self, text: str) -> str:
        """Unicode lower case."""
        return f"lower({text})"

    def map_value(self, mapping: str, key: str) -> str:
        """The value under key (a placeholder), NULL where the map has none."""
        return f"map_extract_value({mapping}, {key})"

    def like(self, text: str, like: str, pattern: str) -> str:
        """text LIKE (or ILIKE) pattern, a backslash escaping % and _ in pattern."""
        return f"{text} {like} {pattern} ESCAPE '\\'"

    def order_column(self, name: str, position: int) -> str:
        """An ORDER BY term for the select list's column `name`, its position-th."""
        return name

    def fraction(self, numerator: str, denominator: str) -> str:
        """numerator / denominator as a DOUBLE (DuckDB divides a DECIMAL so already)."""
        return f"{numerator} / {denominator}"

    def component(self, name: str, value: str) -> str:
        """A rollup component's value in one type whichever side of a UNION it comes from
        (DuckDB unifies them itself)."""
        return value


class ClickHouseDialect(Dialect):
    """ClickHouse's spelling: named, typed parameters {pN:Type}, N the bind order."""

    name = "clickhouse"
    rollups = "daily_rollups_current"  # each day's current build (schema.sql)
    null_date = "CAST(NULL AS Nullable(Date))"

    def param(self, index: int, value: object) -> str:
        return f"{{p{index}:{clickhouse_type(value)}}}"

    def arg_max(self, value: str, by: str) -> str:
        return f"argMax({value}, {by})"

    def arg_min(self, value: str, by: str) -> str:
        return f"argMin({value}, {by})"

    def bool_or(self, condition: str) -> str:
        return f"max({condition})"

    def epoch(self, ts: str) -> str:
        return f"(toUnixTimestamp64Micro({ts}) / 1000000)"

    def seconds(self, n: str) -> str:
        return f"toIntervalSecond({n})"

    def trunc(self, unit: str, value: str) -> str:
        spelled = {
            "second": "toStartOfSecond",
            "minute": "toStartOfMinute",
            "hour": "toStartOfHour",
            "day": "toStartOfDay",
            "week": "toMonday",
            "month": "toStartOfMonth",
        }
        # Always a DateTime64, as DuckDB's date_trunc gives a TIMESTAMP for a DATE too.
        return f"toDateTime64({spelled[unit]}({value}), 6, 'UTC')"

    def timestamp(self, value: str) -> str:
        return f"toDateTime64({value}, 6, 'UTC')"

    def date(self, value: str) -> str:
        return f"toDate({value})"

    def contains(self, text: str, part: str) -> str:
        return f"(position({text}, {part}) > 0)"

    def lower(self, text: str) -> str:
        return f"lowerUTF8({text})"

    def map_value(self, mapping: str, key: str) -> str:
        # A named parameter may stand twice: the key is bound once.
        return f"if(mapContains({mapping}, {key}), {mapping}[{key}], NULL)"

    def like(self, text: str, like: str, pattern: str) -> str:
        return f"{text} {like} {pattern}"  # the backslash is ClickHouse's escape already

    def fraction(self, numerator: str, denominator: str) -> str:
        return f"toFloat64({numerator}) / {denominator}"

    def component(self, name: str, value: str) -> str:
        # A UNION of Int64 sums and UInt64 counts is a Variant, which sum() refuses.
        if name == "revenue":
            return f"toDecimal128({value}, 6)"
        if name in ("duration", "event_duration"):
            return f"toFloat64({value})"
        return f"toInt64({value})"

    def order_column(self, name: str, position: int) -> str:
        # By position: with prefer_column_name_to_alias (QUERY_SETTINGS) a metric named
        # as a column (revenue) would order by the column.
        return str(position)


def clickhouse_type(value: object) -> str:
    """The ClickHouse type a Python value binds as (naive datetimes are UTC)."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, Decimal):
        return "Decimal(38, 6)"
    if isinstance(value, datetime):
        return "DateTime64(6, 'UTC')"
    if isinstance(value, date):
        return "Date"
    if value is None:
        return "Nullable(String)"
    return "String"


DUCKDB = Dialect()
CLICKHOUSE = ClickHouseDialect()
