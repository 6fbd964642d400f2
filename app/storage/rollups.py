"""How daily rollups are stored: the logical row (the daily_stats view's columns), its
compact form in daily_rollups (migration 003) and the SQL between the two, and a site's
daily totals held in memory (DailyTotals). EventStore (events.py) writes and reads them."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Collection, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

# The logical rollup row (the daily_stats view's columns); stored compactly in daily_rollups
# (migration 003), converted by _ENCODE_ROLLUPS.
ROLLUP_COLUMNS = (
    "site_id",
    "day",
    "property",
    "value",
    "visitors",
    "visits",
    "pageviews",
    "events",
    "custom_events",
    "bounces",
    "duration",
    "session_pageviews",
    "revenue",
    "engaged_ms",
    "engaged_visitors",
    "scroll_sum",
    "scroll_count",
    # Seconds from each visit's first to its last event that isn't an engagement ping, both
    # truncated to the second as Plausible's timestamps are, summed over visits (Plausible
    # v2's visit_duration; `duration` counts the pings, to the microsecond).
    "event_duration",
)

# Logical rollup rows (the view `new_rows`, ROLLUP_COLUMNS) as daily_rollups rows, in the
# order that compresses and scans best (the same conversion as migration 003).
_ENCODE_ROLLUPS = (
    "SELECT property, site_id, day, value::VARCHAR, visitors, visits - visitors,"
    " pageviews - visitors, custom_events, bounces, duration::DOUBLE,"
    " session_pageviews - pageviews, floor(rev)::BIGINT,"
    " ((rev - floor(rev)) * 1000000)::INTEGER,"
    " engaged_ms, engaged_visitors, scroll_sum, scroll_count, event_duration::DOUBLE"
    " FROM (SELECT *, revenue::DECIMAL(38, 6) AS rev FROM new_rows)"
    " ORDER BY property, site_id, day, value"
)

# Each logical component summed over daily_rollups rows (sums first, then the arithmetic:
# what a question over many days reads, without the view's per-row work).
ROLLUP_SUMS = {
    "visitors": "sum(visitors)",
    "visits": "sum(visitors) + sum(extra_visits)",
    "pageviews": "sum(visitors) + sum(extra_pageviews)",
    "events": "sum(visitors) + sum(extra_pageviews) + sum(custom_events)",
    "custom_events": "sum(custom_events)",
    "bounces": "sum(bounces)",
    "duration": "sum(duration)",
    "session_pageviews": "sum(visitors) + sum(extra_pageviews) + sum(extra_session_pageviews)",
    "revenue": "sum(revenue_units)::DECIMAL(38, 6)"
    " + sum(revenue_micros)::DECIMAL(38, 6) * 0.000001::DECIMAL(38, 6)",
    "engaged_ms": "sum(engaged_ms)",
    "engaged_visitors": "sum(engaged_visitors)",
    "scroll_sum": "sum(scroll_sum)",
    "scroll_count": "sum(scroll_count)",
    "event_duration": "sum(event_duration)",
}


def rollup_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Logical rollup rows (ROLLUP_COLUMNS tuples) as an Arrow table."""
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {name: pa.array(col) for name, col in zip(ROLLUP_COLUMNS, columns, strict=True)}
    )


def insert_rollups(cur: duckdb.DuckDBPyConnection, logical: duckdb.DuckDBPyRelation) -> None:
    """Insert logical rollup rows (a relation with ROLLUP_COLUMNS) into daily_rollups."""
    encoded = logical.query("new_rows", _ENCODE_ROLLUPS)
    assert encoded is not None  # a SELECT always gives a relation
    encoded.insert_into("daily_rollups")


# A site's daily totals rows, components in ROLLUP_COLUMNS order, revenue in millionths.
TOTALS_ROWS = (
    "SELECT day, visitors, visitors + extra_visits, visitors + extra_pageviews,"
    " visitors + extra_pageviews + custom_events, custom_events, bounces, duration,"
    " visitors + extra_pageviews + extra_session_pageviews,"
    " revenue_units * 1000000 + revenue_micros, engaged_ms, engaged_visitors, scroll_sum,"
    " scroll_count, event_duration FROM daily_rollups WHERE site_id = ? AND property = ''"
    " ORDER BY day"
)
_REVENUE_AT = ROLLUP_COLUMNS.index("revenue") - 4


class DailyTotals:
    """One site's daily totals rows as columns (~110 bytes a site-day): a range's sums are
    slices summed in C, revenue exact (in millionths, as daily_rollups keeps it)."""

    __slots__ = ("_columns", "_days")

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._days = array("l", (row[0].toordinal() for row in rows))
        self._columns = [
            array("d" if name in ("duration", "event_duration") else "q", (row[i] for row in rows))
            for i, name in enumerate(ROLLUP_COLUMNS[4:], 1)
        ]

    def _span(self, first: date, last: date) -> range:
        lo = bisect.bisect_left(self._days, first.toordinal())
        return range(lo, bisect.bisect_right(self._days, last.toordinal(), lo))

    def sums(self, first: date, last: date) -> tuple[Any, ...]:
        """The components summed over the days first..last (revenue a Decimal)."""
        span = self._span(first, last)
        out: list[Any] = [sum(col[span.start : span.stop]) for col in self._columns]
        out[_REVENUE_AT] = Decimal(out[_REVENUE_AT]).scaleb(-6)
        return tuple(out)

    def rows(self, first: date, last: date, wanted: Collection[int]) -> list[tuple[Any, ...]]:
        """(day, components...) of each day first..last that has a row; only the components
        at the `wanted` positions are read, the others are 0 (a year of days in Python)."""
        span = self._span(first, last)
        days = [date.fromordinal(d) for d in self._days[span.start : span.stop]]
        columns: list[Any] = [
            col[span.start : span.stop] if i in wanted else [0] * len(span)
            for i, col in enumerate(self._columns)
        ]
        if _REVENUE_AT in wanted:
            columns[_REVENUE_AT] = [Decimal(v).scaleb(-6) for v in columns[_REVENUE_AT]]
        return list(zip(days, *columns, strict=True))
