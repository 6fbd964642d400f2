"""What every events store offers (issue #24): the DuckDB one (app/storage/events.py) and
the ClickHouse one (app/storage/clickhouse/store.py) both satisfy Store, checked by mypy
structurally (_both below); callers that need only these methods can take either."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.storage.rollups import DailyTotals

if TYPE_CHECKING:
    from app.storage.clickhouse.store import ClickHouseEventStore
    from app.storage.events import EventStore

Row = tuple[Any, ...]


class Store(Protocol):
    engine: str  # "duckdb" or "clickhouse": the SQL query() takes

    def append(
        self,
        rows: Sequence[Row],
        bot_hits: Iterable[tuple[str, int, int]] = (),
        excluded: Iterable[tuple[str, int, str, int]] = (),
    ) -> None:
        """Rows (EVENT_SCHEMA tuples), bot hits (site_id, day, hits) and excluded hits
        (site_id, day, reason, hits), durable when it returns."""

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One read, in the store's own SQL dialect and parameter style."""

    def query_dicts(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Like query(), rows as dicts keyed by column name."""

    def bot_hits(self, site_id: str, first: date, last: date) -> int:
        """Bot hits dropped for the site over the days first..last."""

    def excluded_hits(self, site_id: str, since: date) -> dict[str, int]:
        """Hits the site's exclusion rules dropped on its days since `since`, per kind."""

    def rolled_days(self, site_id: str) -> frozenset[date]:
        """The site's days that have rollups."""

    def rollup_totals(self, site_id: str) -> DailyTotals:
        """The site's daily totals (rollup rows of property '')."""

    def replace_rollups(
        self,
        site_id: str,
        days: Sequence[object],
        rows: Sequence[tuple[Any, ...]],
        counts: Sequence[tuple[object, int]],
    ) -> None:
        """Swap the site's rollup rows of these days for `rows` (readers see old or new)."""

    def delete_user_events(self, site_id: str, user_key: int) -> int:
        """Delete one server-side user's raw events; returns how many went."""

    def delete_site_data(
        self,
        site_id: str,
        first: date | None = None,
        last: date | None = None,
        before: datetime | None = None,
    ) -> dict[str, int]:
        """Delete a site's data of days first..last; returns rows deleted per table."""

    def delete_rolled_up_raw(self, site_id: str, before: date) -> None:
        """Delete raw events of rolled-up days before `before`; mark those days pruned."""

    def day_counts(self, site_id: str, first: date | None, last: date) -> dict[date, int]:
        """Raw events per stored day of the site, over first..last (None: from the start)."""

    def rollup_day_states(self, site_id: str) -> dict[date, tuple[int, bool]]:
        """Each rolled-up day of the site: (raw events when it was built, pruned since)."""

    def prunable(self, site_id: str, before: date) -> int:
        """Raw events of the site's rolled-up days before `before`."""

    def first_day(self, site_id: str) -> date | None:
        """The site's first stored day: of raw events, or of rollups whose raw events went."""

    def visitors_since(self, site_id: str, since: datetime) -> int:
        """Distinct visitors of the site with an event at or after `since` (UTC, naive)."""

    def newest_events(self, site_id: str, limit: int) -> list[tuple[Any, ...]]:
        """(ts, name, pathname, source, device, country) of the newest events but pings."""

    def open_sessions(
        self, since: datetime, columns: Sequence[str]
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """The highest session id, and each visitor's newest event since `since`."""

    def data_inventory(self, site_id: str, first: date | None, last: date | None) -> dict[str, int]:
        """The site's raw events, rolled-up days and rollup rows of days first..last."""

    def user_events(
        self, site_id: str, user_key: int, since: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """One server-side user's events since `since`, oldest first, for their export."""

    def user_days(self, site_id: str, user_key: int) -> set[date]:
        """The days with raw events of one server-side user of the site."""

    def rewrite(self) -> int:
        """Remove deleted rows physically (a deletion must delete); returns bytes stored."""

    def imported_span(self, site_id: str) -> tuple[date, date] | None:
        """The first and last day of the site's imported aggregates (None: it has none)."""

    def data_span(self, site_id: str) -> tuple[date, date] | None:
        """The site's first and last local day with data (raw events or rollups)."""

    def pruned_days(self, site_id: str, first: date, last: date) -> list[date]:
        """The site's days first..last that are rollups only (their raw events pruned)."""

    def daily_stats(self, site_id: str, prop: str, days: Sequence[date]) -> list[dict[str, Any]]:
        """Rollup rows of one property ("" = totals) on `days`: DAILY_STATS_COLUMNS."""

    def redate_site(
        self,
        site_id: str,
        local_day: str,
        params: Sequence[object],
        arrivals: Sequence[tuple[Any, ...]] = (),
        zone: str = "",
    ) -> int:
        """Move the site's raw events to the days `local_day` gives (an SQL DATE of ts in
        the store's SQL, its parameters `params`; on ClickHouse numbered from p1, p0 being
        the site id), drop the rollups of days with raw events, add `arrivals` (rollup rows
        of events that move onto a pruned day) to those days; returns events moved. zone:
        the timezone local_day is of (what a resumed re-dating needs)."""

    def pending_redate(self, site_id: str) -> str | None:
        """The zone of the site's re-dating that was cut short, if one was (None: none)."""

    def export_batches(
        self,
        table: str,
        columns: Sequence[str],
        site_id: str,
        first: date | None,
        last: date | None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The site's rows of `events` (by ts) or `daily_stats` (by day, property, value)
        of days first..last (None: unbounded), these columns, in batches of at most
        events.EXPORT_BATCH rows (a CSV export streams them)."""

    def checkpoint_due(self) -> bool:
        """Whether the store has a log to fold into its file now."""

    def checkpoint(self) -> None:
        """Fold that log (a no-op where there is none)."""

    def close(self) -> None: ...


if TYPE_CHECKING:

    def _both(duckdb: EventStore, clickhouse: ClickHouseEventStore) -> list[Store]:
        """mypy's proof that both stores are Stores (never called)."""
        return [duckdb, clickhouse]
