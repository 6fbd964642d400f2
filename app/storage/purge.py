"""What a site owns, counted (the deletion page and `avocet site delete` say exactly what
goes), and what it owns in SQLite deleted (the last SQLite step of a site's deletion job,
app/jobs/privacy.py)."""

from __future__ import annotations

from datetime import date

from app.storage.meta import MetaStore
from app.storage.store import Store

# thing -> (table, the condition naming the site's rows), in the order they are deleted:
# usage counters of the site's keys before the keys, the site's row last.
_OWNED = {
    "usage_counters": (
        "usage_counts",
        "subject IN (SELECT 'key:' || id FROM api_keys WHERE site_id = ?)",
    ),
    "api_keys": ("api_keys", "site_id = ?"),
    "funnels": ("funnels", "site_id = ?"),
    "annotations": ("annotations", "site_id = ?"),
    "segments": ("segments", "site_id = ?"),
    "goals": ("goals", "site_id = ?"),
    "share_links": ("share_links", "site_id = ?"),
    "invitations": ("invitations", "site_id = ?"),
    "members": ("site_members", "site_id = ?"),
    "salts": ("salts", "site_id = ?"),
    "exclusions": ("site_exclusions", "site_id = ?"),
    "email_reports": ("email_reports", "site_id = ?"),
    "traffic_alerts": ("traffic_alerts", "site_id = ?"),
    "privacy_requests": ("privacy_requests", "site_id = ? AND kind <> 'site'"),
}


def site_inventory(meta: MetaStore, site_id: str) -> dict[str, int]:
    """How many of each thing the site owns in SQLite (table and column names are the
    fixed ones above, never input)."""
    return {
        thing: int(row[0]) if row else 0
        for thing, (table, where) in _OWNED.items()
        for row in [meta.fetchone(f"SELECT count(*) FROM {table} WHERE {where}", (site_id,))]
    }


def purge_site(meta: MetaStore, site_id: str) -> dict[str, int]:
    """Delete everything the site owns in SQLite and then its row, in one transaction, and
    truncate the WAL (secure_delete zeroes the rows in the file; the WAL keeps the pages'
    older images until then). Returns rows deleted per thing; safe to run again."""
    gone: dict[str, int] = {}
    with meta.transaction() as db:
        for thing, (table, where) in _OWNED.items():
            gone[thing] = db.execute(f"DELETE FROM {table} WHERE {where}", (site_id,)).rowcount
        gone["site"] = db.execute("DELETE FROM sites WHERE id = ?", (site_id,)).rowcount
    meta.scrub_now()
    return gone


def events_inventory(
    store: Store, site_id: str, first: date | None = None, last: date | None = None
) -> dict[str, int]:
    """The site's raw events, rolled-up days and rollup rows, of its days first..last
    (either end open when None)."""
    return store.data_inventory(site_id, first, last)
