"""Custom properties a site declares (Plausible's Sites API custom-props), SQLite.

The table is created on first use rather than by a numbered migration: the next meta
migration number was taken by other work in progress, and migrations must be consecutive.
It holds a list of names per site, nothing another table refers to."""

from __future__ import annotations

import time

from app.storage.meta import MetaStore

_TABLE = (
    "CREATE TABLE IF NOT EXISTS site_props ("
    " site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,"
    " property TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"  # unix seconds
    " PRIMARY KEY (site_id, property))"
)


def _ensure(meta: MetaStore) -> None:
    meta.execute(_TABLE)


def props_of(meta: MetaStore, site_id: str) -> list[str]:
    _ensure(meta)
    rows = meta.fetchall(
        "SELECT property FROM site_props WHERE site_id = ? ORDER BY created_at, rowid",
        (site_id,),
    )
    return [str(row[0]) for row in rows]


def add_prop(meta: MetaStore, site_id: str, prop: str) -> None:
    """Idempotent: an existing property stays as it is."""
    _ensure(meta)
    meta.execute(
        "INSERT OR IGNORE INTO site_props (site_id, property, created_at) VALUES (?, ?, ?)",
        (site_id, prop, int(time.time())),
    )


def delete_prop(meta: MetaStore, site_id: str, prop: str) -> None:
    """Idempotent, as Plausible's (deleting a property that isn't there answers deleted)."""
    _ensure(meta)
    meta.execute("DELETE FROM site_props WHERE site_id = ? AND property = ?", (site_id, prop))
