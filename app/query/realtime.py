"""Current visitors: distinct visitors with any event in the last N minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.storage.events import EventStore


def current_visitors(
    store: EventStore, site_id: str, minutes: int, now: datetime | None = None
) -> int:
    """Distinct visitor ids of one site since now - minutes (blocking: run off the loop)."""
    since = (now or datetime.now(UTC)) - timedelta(minutes=minutes)
    rows = store.query(
        "SELECT count(DISTINCT visitor_id) FROM events WHERE site_id = ? AND ts >= ?",
        [site_id, since.astimezone(UTC).replace(tzinfo=None)],
    )
    return int(rows[0][0])
