"""The switches of Plausible's tracker_script_configuration that a site's pa-<id>.js script
acts on (Plausible's Sites API), SQLite; one JSON object per site.

Created on first use, like site_props (app/storage/props.py), for the same reason."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from app.storage.meta import MetaStore

_TABLE = (
    "CREATE TABLE IF NOT EXISTS site_tracker_config ("
    " site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,"
    " config TEXT NOT NULL,"  # JSON object
    " updated_at INTEGER NOT NULL)"  # unix seconds
)


def config_of(meta: MetaStore, site_id: str) -> dict[str, Any]:
    meta.execute(_TABLE)
    row = meta.fetchone("SELECT config FROM site_tracker_config WHERE site_id = ?", (site_id,))
    if row is None:
        return {}
    found: dict[str, Any] = msgspec.json.decode(row[0])
    return found


def update_config(meta: MetaStore, site_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The stored switches with `changes` applied (the keys not named keep their value)."""
    merged = {**config_of(meta, site_id), **changes}
    meta.execute(
        "INSERT INTO site_tracker_config (site_id, config, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id) DO UPDATE SET config = excluded.config,"
        " updated_at = excluded.updated_at",
        (site_id, msgspec.json.encode(merged).decode(), int(time.time())),
    )
    return merged
