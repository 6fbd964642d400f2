"""What every events store offers (issue #24): the DuckDB one (app/storage/events.py) and
the ClickHouse one (app/storage/clickhouse/store.py) both satisfy Store, checked by mypy
structurally (_both below); callers that need only these methods can take either."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    def close(self) -> None: ...


if TYPE_CHECKING:

    def _both(duckdb: EventStore, clickhouse: ClickHouseEventStore) -> list[Store]:
        """mypy's proof that both stores are Stores (never called)."""
        return [duckdb, clickhouse]
