"""Current visitors: distinct visitors with any event in the last N minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.query.model import FilterTree, Query
from app.query.periods import Period
from app.storage.store import Store


def current_visitors(store: Store, site_id: str, minutes: int, now: datetime | None = None) -> int:
    """Distinct visitor ids of one site since now - minutes (blocking: run off the loop)."""
    since = (now or datetime.now(UTC)) - timedelta(minutes=minutes)
    return store.visitors_since(site_id, since.astimezone(UTC).replace(tzinfo=None))


def realtime_query(
    site_id: str, filters: tuple[FilterTree, ...], minutes: int, now: datetime
) -> Query:
    """Current visitors as a Query over raw events (for a share link's fixed filter, which
    the plain count above cannot apply): the visitors metric over the last `minutes`."""
    end = now.astimezone(UTC).replace(tzinfo=None)
    start = end - timedelta(minutes=minutes)
    period = Period(
        preset="realtime",
        timezone="UTC",
        first_day=start.date(),
        last_day=end.date(),
        start=start,
        # Exclusive: a second ahead so an event stamped this very instant still counts.
        end=end + timedelta(seconds=1),
        rolling=True,
    )
    return Query(site_id=site_id, period=period, metrics=("visitors",), filters=filters)
