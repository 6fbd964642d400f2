"""The last events a site received, for the settings UI's "verify installation" list."""

from __future__ import annotations

from datetime import UTC

import msgspec

from app.storage.store import Store


class RecentEvent(msgspec.Struct, frozen=True):
    time: str  # ISO-8601 UTC
    name: str
    path: str | None
    source: str | None
    device: str | None
    country: str | None


def recent_events(store: Store, site_id: str, limit: int = 20) -> list[RecentEvent]:
    """The site's newest events, newest first (engagement pings left out: they follow every
    pageview and would crowd the list). Blocking: run off the event loop."""
    rows = store.newest_events(site_id, limit)
    return [
        RecentEvent(
            ts.replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            str(name),
            path,
            source,
            device,
            country,
        )
        for ts, name, path, source, device, country in rows
    ]
